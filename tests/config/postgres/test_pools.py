"""config/postgres/pools.py: the pools lend the connection returned last (PostgreSQL only)."""

import asyncio

import pytest
from django.db import connection

from config.postgres.pools import AsyncLastReturnedFirstPool, LastReturnedFirstPool
from tests.config.postgres.helpers import plain_connection_params

pytestmark = [
    pytest.mark.django_db,
    pytest.mark.skipif(connection.vendor != "postgresql", reason="SQLite has no connection pool"),
]


def test_the_connection_returned_last_is_lent_first():
    with LastReturnedFirstPool(kwargs=plain_connection_params(), min_size=3, max_size=3, open=True) as pool:
        pool.wait()
        first, second, third = (pool.getconn() for _ in range(3))
        for conn in (first, second, third):
            pool.putconn(conn)
        again = pool.getconn()
        assert again is third  # psycopg's own pool lends `first`, idle longest
        pool.putconn(again)
        assert pool.getconn() is third


def test_the_async_pool_lends_the_connection_returned_last_too():
    async def lent_after_returning_three():
        async with AsyncLastReturnedFirstPool(kwargs=plain_connection_params(), min_size=3, max_size=3, open=False) as pool:
            await pool.wait()
            conns = [await pool.getconn() for _ in range(3)]
            for conn in conns:
                await pool.putconn(conn)
            return conns, await pool.getconn()

    conns, again = asyncio.run(lent_after_returning_three())
    assert again is conns[-1]
