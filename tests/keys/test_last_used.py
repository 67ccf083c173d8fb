"""A key's last use: written at most once per resolution, and once per process for a burst of
requests that all read the same old time (keys/services.py `claim_last_used`)."""

import threading
from datetime import timedelta

import pytest

from keys import services
from keys.models import ApiKey


@pytest.fixture(autouse=True)
def minute_resolution(settings):
    settings.API_KEY_LAST_USED_RESOLUTION = 60


@pytest.fixture
def stale_key(global_key):
    """The key as a request reads it: never used, so its last use is due."""
    return ApiKey.objects.get(pk=global_key.row.pk)


def test_a_due_write_is_claimed_once_per_resolution_except_at_the_claimed_moment(stale_key, clock):
    t0 = clock.now
    assert services.claim_last_used(key=stale_key, now=t0)
    assert services.claim_last_used(key=stale_key, now=t0)  # the claimer itself, judged again
    assert not services.claim_last_used(key=stale_key, now=t0 + timedelta(seconds=1))
    assert not services.claim_last_used(key=stale_key, now=t0 - timedelta(seconds=1))
    assert not services.last_used_due(key=stale_key, now=t0 + timedelta(seconds=59))
    assert services.claim_last_used(key=stale_key, now=t0 + timedelta(seconds=60))


def test_a_stored_recent_use_is_never_due(stale_key, clock):
    stale_key.last_used_at = clock.now
    assert not services.claim_last_used(key=stale_key, now=clock.now + timedelta(seconds=30))


def test_another_keys_claim_does_not_count(stale_key, make_key, team, clock):
    other = ApiKey.objects.get(pk=make_key(team, name="other").row.pk)
    assert services.claim_last_used(key=stale_key, now=clock.now)
    assert services.claim_last_used(key=other, now=clock.now + timedelta(seconds=1))


def test_requests_read_at_once_write_once(stale_key, clock, django_assert_num_queries):
    """Twenty requests of one key, each with its copy of the same old row and its own moment:
    one claims the write, the others find it done."""
    reads = [ApiKey.objects.get(pk=stale_key.pk) for _ in range(20)]
    won, start = [], threading.Barrier(20)

    def request(n):
        start.wait()
        won.append(services.claim_last_used(key=reads[n], now=clock.now + timedelta(microseconds=n)))

    threads = [threading.Thread(target=request, args=(n,)) for n in range(20)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert won.count(True) == 1

    with django_assert_num_queries(0):  # the writes the others would have made
        for read in reads[1:]:
            services.touch_last_used(key=read, now=clock.now + timedelta(seconds=1))
