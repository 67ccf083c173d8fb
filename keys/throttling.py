"""Per-key rate limit: a fixed-window counter in the shared cache.

DRF's SimpleRateThrottle keeps a list of every request time per key and rewrites it on each
request; a counter is one atomic `incr` (on Redis and memcached) and the same answer within a
window. The rate comes from settings.API_KEY_RATE, e.g. "600/minute".
"""

import time

from django.conf import settings
from django.core.cache import cache
from rest_framework.throttling import SimpleRateThrottle


class ApiKeyRateThrottle(SimpleRateThrottle):
    scope = "api_key"

    def get_rate(self) -> str | None:
        return settings.API_KEY_RATE or None

    def allow_request(self, request, view) -> bool:
        if self.rate is None or request.auth is None:
            return True
        now = time.time()
        window = int(now // self.duration)
        cache_key = f"throttle:api_key:{request.auth.key.pk}:{window}"
        if cache.add(cache_key, 1, timeout=self.duration + 1):
            count = 1
        else:
            try:
                count = cache.incr(cache_key)
            except ValueError:  # the window's counter expired between add and incr
                cache.add(cache_key, 1, timeout=self.duration + 1)
                count = 1
        if count > self.num_requests:
            self.wait_seconds = (window + 1) * self.duration - now
            return False
        return True

    def wait(self) -> float:
        return self.wait_seconds
