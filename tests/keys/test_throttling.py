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


# --- where the counters live: the cache when it increments atomically, else the database ---

import threading  # noqa: E402

import pytest  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.core.management.base import CommandError  # noqa: E402
from django.test.utils import override_settings  # noqa: E402
from rest_framework.test import APIClient  # noqa: E402

from keys import throttling  # noqa: E402
from keys.models import RateWindow  # noqa: E402

DATABASE_CACHE = {"default": {"BACKEND": "django.core.cache.backends.db.DatabaseCache", "LOCATION": "test_cache"}}
LOCMEM_CACHE = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}


@pytest.mark.parametrize(
    ("backend", "in_cache"),
    [
        ("django.core.cache.backends.locmem.LocMemCache", True),
        ("django.core.cache.backends.redis.RedisCache", True),
        ("django.core.cache.backends.memcached.PyMemcacheCache", True),
        ("django.core.cache.backends.db.DatabaseCache", False),  # get-then-set: not atomic
        ("django.core.cache.backends.filebased.FileBasedCache", False),
        ("django.core.cache.backends.dummy.DummyCache", False),  # would count nothing
    ],
)
def test_counters_stay_in_the_cache_only_when_it_increments_atomically(backend, in_cache):
    with override_settings(CACHES={"default": {"BACKEND": backend, "LOCATION": "x"}}):
        assert throttling.counts_in_cache() is in_cache


@override_settings(CACHES=DATABASE_CACHE)
def test_the_database_counter_holds_the_limit_and_resets_with_the_window(global_key, monkeypatch):
    key_id = global_key.row.pk
    monkeypatch.setattr(throttling.time, "time", lambda: 1_000_040.0)  # 20 s into a minute window
    assert [throttling.seconds_until_allowed(key_id=key_id, rate="3/minute") for _ in range(3)] == [None] * 3
    assert throttling.seconds_until_allowed(key_id=key_id, rate="3/minute") == pytest.approx(40.0)
    row = RateWindow.objects.get(key_id=key_id)
    assert (row.count, row.window_end) == (4, 1_000_080)
    # The next window starts from one again, in the same row.
    monkeypatch.setattr(throttling.time, "time", lambda: 1_000_090.0)
    assert throttling.seconds_until_allowed(key_id=key_id, rate="3/minute") is None
    assert RateWindow.objects.filter(key_id=key_id).count() == 1
    assert RateWindow.objects.get(key_id=key_id).count == 1


@override_settings(CACHES=DATABASE_CACHE)
def test_database_counters_are_per_key(make_key, team, fixed_clock):
    first, second = make_key(team).row.pk, make_key(team).row.pk
    assert throttling.seconds_until_allowed(key_id=first, rate="1/hour") is None
    assert throttling.seconds_until_allowed(key_id=first, rate="1/hour") is not None
    assert throttling.seconds_until_allowed(key_id=second, rate="1/hour") is None


@override_settings(CACHES=DATABASE_CACHE, API_KEY_RATE="3/minute")
def test_the_api_answers_429_at_the_limit_with_database_counters(global_key, fixed_clock):
    client = APIClient()
    header = {"HTTP_AUTHORIZATION": global_key.header}
    statuses = [client.post("/api/core/dataset/list", {}, format="json", **header).status_code for _ in range(5)]
    assert statuses == [200, 200, 200, 429, 429]
    assert RateWindow.objects.get(key_id=global_key.row.pk).count == 5


@pytest.mark.django_db(transaction=True)
@override_settings(CACHES=DATABASE_CACHE)
def test_concurrent_database_counts_lose_no_increment(make_key, team, fixed_clock):
    """Sixteen threads, each on its own connection, count 5 requests each: exactly the limit
    (40 of 80) is allowed — a get-then-set counter would let more through."""
    from django.db import connection

    key_id = make_key(team).row.pk
    allowed, errors = [], []
    start = threading.Barrier(16)

    def hammer():
        try:
            start.wait()
            for _ in range(5):
                allowed.append(throttling.seconds_until_allowed(key_id=key_id, rate="40/hour") is None)
        except Exception as error:  # noqa: BLE001 - reported by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert allowed.count(True) == 40
    assert RateWindow.objects.get(key_id=key_id).count == 80


def test_deleting_a_key_deletes_its_counter(global_key):
    with override_settings(CACHES=DATABASE_CACHE):
        throttling.seconds_until_allowed(key_id=global_key.row.pk, rate="3/minute")
    global_key.row.delete()
    assert not RateWindow.objects.exists()


# --- `manage.py serve`: the multi-process command checks its cache before starting ---


@override_settings(CACHES=LOCMEM_CACHE)
def test_serve_refuses_an_explicit_local_memory_cache_with_several_workers(db, monkeypatch):
    monkeypatch.setenv("CACHE_URL", "locmemcache://")
    with pytest.raises(CommandError, match="2× its limit"):
        call_command("serve", "--workers", "2")


@pytest.mark.parametrize("workers", ["0", "-1"])
def test_serve_needs_a_worker(db, workers):
    with pytest.raises(CommandError, match="at least 1"):
        call_command("serve", "--workers", workers)


# --- Redis (CACHE_URL=redis://…): a real redis-server, counters in the cache ---


@pytest.fixture
def redis_cache(tmp_path):
    from tests.redis_server import redis_server

    with redis_server(tmp_path) as url:
        with override_settings(CACHES={"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": url}}):
            yield url


def test_redis_counts_concurrent_requests_exactly_and_keeps_the_database_out(redis_cache, make_key, team, fixed_clock):
    import redis

    key_id = make_key(team).row.pk
    assert throttling.counts_in_cache()
    allowed = []
    start = threading.Barrier(16)

    def hammer():
        start.wait()
        for _ in range(5):
            allowed.append(throttling.seconds_until_allowed(key_id=key_id, rate="40/hour") is None)

    threads = [threading.Thread(target=hammer) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert allowed.count(True) == 40 and len(allowed) == 80
    [name] = redis.Redis.from_url(redis_cache).keys(f"*throttle:api_key:{key_id}:*")
    assert int(redis.Redis.from_url(redis_cache).get(name)) == 80
    assert not RateWindow.objects.exists()


def test_the_counter_table_is_unlogged_on_postgresql(db):
    """No WAL flush per API request for a count (keys/migrations/0004_rate_window_unlogged.py)."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: SQLite has no unlogged tables")
    with connection.cursor() as cursor:
        cursor.execute("SELECT relpersistence FROM pg_class WHERE relname = 'keys_ratewindow'")
        assert cursor.fetchone() == ("u",)


def test_serve_refuses_to_start_before_migrations_are_applied(db, monkeypatch):
    from django.db.migrations.executor import MigrationExecutor

    monkeypatch.setattr(MigrationExecutor, "migration_plan", lambda self, targets: [("keys.0004_rate_window_unlogged", False)])
    with pytest.raises(CommandError, match="not applied .* run `python manage.py migrate` first"):
        call_command("serve", "--workers", "1")
