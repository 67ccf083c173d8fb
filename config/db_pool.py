"""The check psycopg's pool runs on a PostgreSQL connection before lending it to a request.

psycopg_pool's own `check_connection` replaces a dead connection, but it waits between two
failed checks with a growing backoff (1 s, 2 s, 4 s …). After a PostgreSQL restart every idle
connection in the pool is dead, so a request would meet them one by one and wait out the sum of
those delays — past the pool timeout with a few dead connections (measured: a 500 after ~10
pooled connections died). Here, the first dead connection makes the pool check all its idle
connections at once (`ConnectionPool.check()`: dead ones dropped, replacements opened by the
pool's workers), so the request's next try finds a live one after a single short wait.
"""

from psycopg_pool import ConnectionPool


def check_connection(conn) -> None:
    """Raise if ``conn`` is dead, after clearing every other dead connection from the pools."""
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        _check_idle_connections()
        raise


def _check_idle_connections() -> None:
    from django.db import connections

    for alias in connections:
        wrapper = connections[alias]
        if wrapper.vendor == "postgresql" and wrapper.pool is not None:
            wrapper.pool.check()  # uses psycopg's plain check: no recursion into this one
