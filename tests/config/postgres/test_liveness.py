"""config/postgres/liveness.py: a connection back a moment ago is lent without the round-trip
test, unless the server has ended it since (PostgreSQL only: SQLite has no server)."""

import os
import resource

import psycopg
import pytest
from django.db import connection
from psycopg_pool import ConnectionPool

from config.postgres import liveness
from config.postgres.base import check_connection
from tests.config.postgres.helpers import plain_connection_params

pytestmark = pytest.mark.django_db


def connect() -> psycopg.Connection:
    """A plain psycopg connection to the test database (Django's own options left out)."""
    return psycopg.connect(**plain_connection_params())


@pytest.fixture
def conn():
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no server and no connection pool")
    with connect() as opened:
        yield opened


def terminate(conn) -> None:
    """End `conn`'s backend from another connection, as a restart or failover does, and wait
    until it is gone (pg_terminate_backend's timeout): its FATAL message is then on the socket."""
    with connect() as other:
        assert other.execute("SELECT pg_terminate_backend(%s, 5000)", [conn.info.backend_pid]).fetchone()[0]


def test_a_connection_never_returned_is_tested(conn):
    assert not liveness.known_alive(conn)


def test_a_connection_returned_a_moment_ago_is_not_tested(conn, monkeypatch):
    liveness.mark_returned(conn)
    assert liveness.known_alive(conn)

    def round_trip(_conn):
        raise AssertionError("the known-alive connection was tested with a round trip")

    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(round_trip))
    check_connection(conn)  # no round trip, no error


def test_a_connection_idle_for_longer_is_tested(conn, monkeypatch):
    liveness.mark_returned(conn)
    monkeypatch.setattr(liveness, "RECENT_SECONDS", 0.0)
    assert not liveness.known_alive(conn)
    calls = []
    monkeypatch.setattr(ConnectionPool, "check_connection", staticmethod(calls.append))
    check_connection(conn)
    assert calls == [conn]


def test_a_connection_the_server_ended_a_moment_ago_is_tested_and_fails(conn):
    liveness.mark_returned(conn)
    terminate(conn)
    assert not liveness.known_alive(conn)  # within the window, but the socket has the FATAL
    with pytest.raises(psycopg.OperationalError):
        check_connection(conn)


def test_a_closed_connection_is_tested(conn):
    liveness.mark_returned(conn)
    conn.close()
    assert not liveness.known_alive(conn)


def test_a_used_connection_reads_as_alive_again_once_returned(conn):
    """A statement's whole answer is read before the connection goes back: nothing is left on
    the socket to be mistaken for the server ending it."""
    for _ in range(3):
        conn.execute("SELECT generate_series(1, 1000)").fetchall()
        liveness.mark_returned(conn)
        assert liveness.known_alive(conn)


def test_a_connection_past_selects_descriptor_limit_is_known_alive_too(conn):
    """A server holding a thousand streams has socket descriptors above 1,024, where
    select() cannot look: the check must still see an idle, healthy connection as alive."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 2048:
        pytest.skip(f"this machine allows {hard} open files: no descriptor past 1,024 to test with")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 2048), hard))
    spares = []
    try:
        while not spares or spares[-1] < 1024:  # every lower descriptor taken: the socket lands past 1,024
            spares.append(os.open(os.devnull, os.O_RDONLY))
        with connect() as high:
            assert high.fileno() >= 1024
            liveness.mark_returned(high)
            assert liveness.known_alive(high)
    finally:
        for fd in spares:
            os.close(fd)
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
