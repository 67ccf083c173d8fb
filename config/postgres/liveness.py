"""Whether a pooled connection must be tested with a round trip before it is lent.

Both of our psycopg pools (Django's, config/postgres/base.py; the chat turn's async one,
chat/completions/turn_store.py) test each connection they lend, so that a PostgreSQL restart
fails no request on a stale connection. That test is an empty query: a round trip, and on a
chat turn two of them — 0.25–0.3 ms of a turn's added latency at c=1 (docs/benchmarks.md,
"Prepared statements and fewer liveness checks").

A connection that came back to the pool idle a moment ago, and on which the server has sent
nothing since, is alive: the test is skipped for it, as HikariCP does within its
`aliveBypassWindowMs` (500 ms). When PostgreSQL ends a connection — a restart, a failover,
`pg_terminate_backend`, a killed backend — it sends its FATAL message and closes the socket,
which makes the socket readable; so does a connection reset. A readable idle socket therefore
gets the full test, however recently the connection was used.
"""

import select
import time
from weakref import WeakKeyDictionary

import psycopg

RECENT_SECONDS = 0.5

_returned_at: WeakKeyDictionary = WeakKeyDictionary()


def mark_returned(conn) -> None:
    """The pool's `reset` callback: `conn` has just come back idle (its last exchange ended
    with the server ready for the next one)."""
    _returned_at[conn] = time.monotonic()


def known_alive(conn) -> bool:
    """True when `conn` came back idle within RECENT_SECONDS and nothing has arrived on its
    socket since; False means: test it."""
    returned = _returned_at.get(conn)
    if returned is None or time.monotonic() - returned > RECENT_SECONDS:
        return False
    try:
        return not _has_input(conn.fileno())
    except (OSError, ValueError, psycopg.Error):  # closed: no socket any more
        return False


def _has_input(fd: int) -> bool:
    """Whether anything (data, end of stream, an error) waits on `fd`, without waiting. poll,
    not select: a server holding a thousand streams has descriptors past select's 1,024."""
    if not hasattr(select, "poll"):  # Windows
        return bool(select.select([fd], [], [], 0)[0])
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(0))
