"""The rate limit is a plain DRF BaseThrottle, and the async chat view runs the same class."""

from rest_framework.throttling import BaseThrottle, SimpleRateThrottle

from keys.throttling import ApiKeyRateThrottle, parse_rate


def test_the_throttle_is_a_base_throttle_not_a_rewritten_simple_rate_throttle():
    assert issubclass(ApiKeyRateThrottle, BaseThrottle)
    assert not issubclass(ApiKeyRateThrottle, SimpleRateThrottle)


def test_rates_read_like_drf_rates():
    assert parse_rate("600/minute") == (600, 60)
    assert parse_rate("5/s") == (5, 1)
    assert parse_rate("10/hour") == (10, 3600)
    assert parse_rate("1/day") == (1, 86400)
