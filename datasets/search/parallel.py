"""Running one recall channel beside another, on a second database connection.

mixedRecall asks two channels (vector and full text) whose SQL are independent: on PostgreSQL
each is one backend's work, so run side by side on two connections they take the longer of
the two instead of the sum (bench: docs/benchmarks.md, "Dataset search"). The full-text
channel runs in a small thread pool, on a connection of its own borrowed from the database
pool (returned when it finishes); the vector channel stays on the request's thread.

It runs on the request's thread instead (one after the other, as before) when a second
connection would be wrong or could stall:
- the request is inside a transaction: another connection would not see its uncommitted rows
  (tests run in one; so does any caller holding `transaction.atomic()`);
- the database is not PostgreSQL with a connection pool (SQLite's channels are NumPy and FTS5
  in this process: nothing to overlap on the database side);
- no pooled connection is idle and the pool is at its maximum, or every side thread is busy:
  waiting for a connection that requests holding theirs will not give back soon would turn a
  busy server's searches slower, not faster.
"""

import threading
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Callable, TypeVar

from django.db import connection

T = TypeVar("T")

SIDE_THREADS = 4
_executor = ThreadPoolExecutor(max_workers=SIDE_THREADS, thread_name_prefix="search-channel")
_free = threading.BoundedSemaphore(SIDE_THREADS)


def _spare_connection() -> bool:
    if connection.vendor != "postgresql" or connection.in_atomic_block:
        return False
    pool = getattr(connection, "pool", None)
    if pool is None:
        return False
    stats = pool.get_stats()
    return stats.get("pool_available", 0) > 0 or stats.get("pool_size", 0) < pool.max_size


def _on_own_connection(function: Callable[..., T], args: tuple) -> T:
    from django.db import connections

    try:
        return function(*args)
    finally:
        connections.close_all()  # back to the pool: this thread keeps none between searches
        _free.release()


def beside(function: Callable[..., T], *args) -> "Future[T] | None":
    """`function(*args)` started on a side thread and connection, or None when it should run
    on the caller's thread (see the module docstring)."""
    if not _spare_connection() or not _free.acquire(blocking=False):
        return None
    try:
        return _executor.submit(_on_own_connection, function, args)
    except RuntimeError:  # the interpreter is shutting down
        _free.release()
        return None
