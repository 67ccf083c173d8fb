"""Per-key rate limit: a fixed-window counter in the shared cache.

DRF's SimpleRateThrottle keeps a list of every request time per key and rewrites it on each
request; a counter is one atomic `incr` (on Redis and memcached) and the same answer within a
window. The rate comes from settings.API_KEY_RATE, e.g. "600/minute".
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import BaseThrottle

_PERIODS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_rate(rate: str) -> tuple[int, int]:
    """'600/minute' → (600, 60): requests per period in seconds (DRF's rate format)."""
    count, period = rate.split("/")
    return int(count), _PERIODS[period[0]]


def seconds_until_allowed(*, key_id: int, rate: str | None = None) -> float | None:
    """Count one request of key ``key_id``; None if allowed, else seconds to wait."""
    rate = settings.API_KEY_RATE if rate is None else rate
    if not rate:
        return None
    limit, duration = parse_rate(rate)
    now = time.time()
    window = int(now // duration)
    cache_key = f"throttle:api_key:{key_id}:{window}"
    if cache.add(cache_key, 1, timeout=duration + 1):
        count = 1
    else:
        try:
            count = cache.incr(cache_key)
        except ValueError:  # the window's counter expired between add and incr
            cache.add(cache_key, 1, timeout=duration + 1)
            count = 1
    return (window + 1) * duration - now if count > limit else None


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
