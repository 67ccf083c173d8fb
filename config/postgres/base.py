"""Django's PostgreSQL backend, whose psycopg pool lends the connection returned last
(pools.py), checks each connection it lends and, on finding a dead one, sweeps out every other
dead one at once.

Why not plain `CONN_HEALTH_CHECKS`: Django then gives the pool psycopg's own check, and the
pool meets the dead connections of a restarted server one by one, backing off 1, 2, 4, 8 s
between them — a pool that had grown to a handful of connections makes the next request wait
out DB_POOL_TIMEOUT and fail. One dead connection means the server went away, so the rest
are dead too: `ConnectionPool.check()` tests all idle ones at once and replaces the dead.
"""

from django.db import NotSupportedError
from django.db.backends.postgresql import base
from django.db.backends.base.base import NO_DB_ALIAS
from psycopg_pool import ConnectionPool

from config.postgres.liveness import known_alive, mark_returned
from config.postgres.pools import LastReturnedFirstPool


def check_connection(conn) -> None:
    """The pool's `check`: raises for a dead connection (the pool then discards it). A
    connection back from a request a moment ago is not tested again (liveness.py)."""
    if known_alive(conn):
        return
    try:
        ConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)
        if pool is not None:
            pool.check()  # the idle ones are as dead as this one: test and replace them all now
        raise


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool_options = self.settings_dict["OPTIONS"].get("pool")
        if self.alias == NO_DB_ALIAS or not pool_options:
            return None
        if self.alias not in self._connection_pools:
            if self.settings_dict.get("CONN_MAX_AGE", 0) != 0:
                raise NotSupportedError("Pooling doesn't support persistent connections.")
            connect_kwargs = self.get_connection_params()
            connect_kwargs["autocommit"] = True  # as Django's own pool: it sets it later on
            pool = LastReturnedFirstPool(
                kwargs=connect_kwargs,
                open=False,
                configure=self._configure_connection,
                check=check_connection,
                reset=mark_returned,
                **(pool_options if isinstance(pool_options, dict) else {}),
            )
            self._connection_pools.setdefault(self.alias, pool)
        return self._connection_pools[self.alias]
