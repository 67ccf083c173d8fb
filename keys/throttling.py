"""Per-key rate limit: a fixed-window counter shared by every server process.

DRF's SimpleRateThrottle keeps a list of every request time per key and rewrites it on each
request; a counter is one atomic increment and the same answer within a window. The rate comes
from settings.API_KEY_RATE, e.g. "600/minute".

Where the counter lives follows the cache (CACHE_URL): Redis and memcached increment atomically
across processes, the local-memory cache within its one process (the single-process default),
so those count in the cache — on Redis as one MULTI/EXEC round trip (INCR + EXPIRE) rather than
Django's add-then-exists-then-incr (three). Django's database cache has no atomic increment (get
then set: two processes would lose counts), and neither do the file and dummy caches, so with
those the counters live in the database instead — one row per key (keys.models.RateWindow,
UNLOGGED on PostgreSQL: no WAL flush per request; counts are not worth one) counted by one
`INSERT … ON CONFLICT DO UPDATE … RETURNING` statement, atomic on PostgreSQL and SQLite alike.
bench/rate_counters.py measures each (docs/production.md).
"""

import time

from django.conf import settings
from django.core.cache import cache
from django.db import connection
from rest_framework.throttling import BaseThrottle

from keys.models import RateWindow

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}

# Cache backends whose `incr` is one atomic operation (Redis, memcached: across processes;
# local memory: within its process, which is all it is shared by).
_REDIS = "django.core.cache.backends.redis.RedisCache"
_ATOMIC_CACHE_BACKENDS = (
    "django.core.cache.backends.locmem.LocMemCache",
    _REDIS,
    "django.core.cache.backends.memcached.PyMemcacheCache",
    "django.core.cache.backends.memcached.PyLibMCCache",
)


def parse_rate(rate: str) -> tuple[int, int]:
    """'600/minute' → (600, 60): requests per period in seconds (DRF's rate format)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period[0]]


def counts_in_cache() -> bool:
    """True when the configured cache increments atomically (else the database counts)."""
    return settings.CACHES["default"]["BACKEND"] in _ATOMIC_CACHE_BACKENDS


def seconds_until_allowed(*, key_id: int, rate: str | None = None) -> float | None:
    """Count one request of key ``key_id``; None if allowed, else seconds to wait."""
    rate = settings.API_KEY_RATE if rate is None else rate
    if not rate:
        return None
    limit, duration = parse_rate(rate)
    now = time.time()
    window = int(now // duration)
    backend = settings.CACHES["default"]["BACKEND"]
    if backend == _REDIS:
        count = _count_in_redis(f"throttle:api_key:{key_id}:{window}", timeout=duration + 1)
    elif backend in _ATOMIC_CACHE_BACKENDS:
        count = _count_in_cache(f"throttle:api_key:{key_id}:{window}", timeout=duration + 1)
    else:
        count = _count_in_database(key_id=key_id, window_end=(window + 1) * duration)
    return (window + 1) * duration - now if count > limit else None


def _count_in_redis(cache_key: str, *, timeout: int) -> int:
    """INCR and EXPIRE in one MULTI/EXEC round trip, on the client Django's Redis cache uses
    (the value is a plain integer, as that cache stores integers)."""
    key = cache.make_and_validate_key(cache_key)
    client = cache._cache.get_client(key, write=True)
    with client.pipeline(transaction=True) as pipe:
        pipe.incr(key)
        pipe.expire(key, timeout)
        count, _ = pipe.execute()
    return int(count)


def _count_in_cache(cache_key: str, *, timeout: int) -> int:
    if cache.add(cache_key, 1, timeout=timeout):
        return 1
    try:
        return cache.incr(cache_key)
    except ValueError:  # the window's counter expired between add and incr
        cache.add(cache_key, 1, timeout=timeout)
        return 1


def _count_in_database(*, key_id: int, window_end: int) -> int:
    """One statement: start the key's window at 1, or add 1 to the window it is in."""
    table = connection.ops.quote_name(RateWindow._meta.db_table)
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} (key_id, window_end, count) VALUES (%s, %s, 1) "
            f"ON CONFLICT (key_id) DO UPDATE SET "
            f"count = CASE WHEN {table}.window_end = excluded.window_end THEN {table}.count + 1 ELSE 1 END, "
            f"window_end = excluded.window_end "
            f"RETURNING count",
            [key_id, window_end],
        )
        return cursor.fetchone()[0]


class ApiKeyRateThrottle(BaseThrottle):
    """The DRF face of ``seconds_until_allowed``: one count per authenticated request."""

    wait_seconds: float | None = None

    def allow_request(self, request, view) -> bool:
        if request.auth is None:
            return True
        self.wait_seconds = seconds_until_allowed(key_id=request.auth.key.pk)
        return self.wait_seconds is None

    def wait(self) -> float | None:
        return self.wait_seconds
