"""DATABASES ENGINE `config.postgres`: Django's PostgreSQL backend, unchanged but for the check
its psycopg pool runs on a connection before lending it (see config/db_pool.py).

Django builds the pool itself and passes psycopg's plain `check_connection` when
CONN_HEALTH_CHECKS is on, with no setting to name another; the pool keeps that callable as
`_check`, which is swapped here once, when the pool is first built.
"""

from django.db.backends.postgresql import base

from config.db_pool import check_connection


class DatabaseWrapper(base.DatabaseWrapper):
    @property
    def pool(self):
        pool = super().pool
        if pool is not None and getattr(pool, "_check", None) not in (None, check_connection):
            pool._check = check_connection
        return pool
