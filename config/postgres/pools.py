"""psycopg's connection pools, lending the connection returned last.

psycopg's pools lend the connection that has been idle longest (a queue), so consecutive
requests rotate through every idle connection — each a PostgreSQL backend with its own caches,
warm or not on the CPU. One searchTest at a time over three pooled connections cost PostgreSQL
7.1–7.9 ms of CPU per search, against 6.4 ms when every search ran on one connection
(100,000 chunks; docs/benchmarks.md, "The built-in embedding's index over sparsevec, orjson,
the connection returned last"). Lending the last one
returned (a stack) keeps the busy few hot, lets the others idle out (the pool's `max_idle`
closes the longest idle first) and keeps more checkouts within liveness.py's "returned a moment
ago".
"""

from psycopg_pool import AsyncConnectionPool, ConnectionPool

# Both pools take a lent connection from the left of their deque of idle ones and put a
# returned one on the right; turning the deque by one puts the last returned on the left. (The
# pools call this under their lock. tests/config/postgres/test_pools.py fails if psycopg_pool
# stops lending from the left.)


class LastReturnedFirstPool(ConnectionPool):
    def _get_ready_connection(self, timeout):
        self._pool.rotate(1)
        return super()._get_ready_connection(timeout)


class AsyncLastReturnedFirstPool(AsyncConnectionPool):
    async def _get_ready_connection(self, timeout):
        self._pool.rotate(1)
        return await super()._get_ready_connection(timeout)
