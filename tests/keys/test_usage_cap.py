"""The usage cap: reserved before each model call (one conditional update, so concurrent calls
cannot all pass it), shared by a key and its replacement during a rotation's grace, and shown
as the key's state ("over cap") wherever keys are listed."""

from datetime import timedelta
from io import StringIO

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command

from keys import services
from keys.models import ApiKey, ApiKeyState
from tests.chat.completion_calls import ask, post
from tests.issued_keys import IssuedKey

CAP = 10


@pytest.fixture
def models(provider_models):
    return provider_models


def spent(key: IssuedKey) -> int:
    return ApiKey.objects.get(pk=key.row.pk).usage_points


def test_reserving_refuses_once_the_cap_is_reached_and_settling_gives_back_the_rest(make_key, team):
    key = make_key(team, max_usage_points=CAP)
    assert services.reserve_usage(key=key.row, points=6) == 6
    assert services.reserve_usage(key=key.row, points=6) == 6  # 6 < 10: still under the cap
    with pytest.raises(services.UsageCapReached):
        services.reserve_usage(key=key.row, points=1)  # 12 >= 10
    services.add_usage(key=key.row, points=0, reserved=6)  # a failed call gives its reservation back
    assert spent(key) == 6


def test_an_uncapped_key_reserves_nothing(make_key, team):
    key = make_key(team)
    assert services.reserve_usage(key=key.row, points=50) == 0
    assert spent(key) == 0


def test_a_rotated_key_and_its_replacement_share_one_count_and_cap(models, make_key, team, app):
    old = make_key(team, app, max_usage_points=CAP)
    new = IssuedKey(*services.rotate_api_key(key=old.row))
    statuses, calls = [], 0
    for n in range(12):  # alternate the two keys until both are refused
        answer = post(ask("hi"), key=old if n % 2 == 0 else new)
        statuses.append(answer.status_code)
        if answer.status_code == 200:
            calls += 1
    per_call = 4  # the fake provider counts words: "hi" → 1, "Answer to: hi" → 3
    assert statuses[-2:] == [402, 402]
    # One count for both, on the replacement: at most one call beyond the cap, not one per key.
    assert spent(new) == calls * per_call
    assert CAP <= spent(new) < CAP + per_call
    assert spent(old) == 0  # frozen at the rotation


def test_the_state_says_over_cap(make_key, team, clock):
    key = make_key(team, max_usage_points=5)
    assert key.row.state() == ApiKeyState.ACTIVE
    services.add_usage(key=key.row, points=5)
    key.row.refresh_from_db()
    assert key.row.state() == ApiKeyState.OVER_CAP
    assert ApiKeyState.OVER_CAP.label == "over cap"


def test_a_rotating_key_past_its_expiry_is_expired_and_refused(make_key, team, app, clock):
    key = make_key(team, app, expires_at=clock.now + timedelta(hours=1))
    services.rotate_api_key(key=key.row, grace=timedelta(hours=5))
    clock.advance(hours=2)
    key.row.refresh_from_db()
    assert key.row.state() == ApiKeyState.EXPIRED
    assert post(ask("hi"), key=key).status_code == 401


def test_list_api_keys_shows_over_cap(make_key, team):
    make_key(team, name="spent", max_usage_points=3, usage_points=3)
    make_key(team, name="fresh", max_usage_points=3)
    out = StringIO()
    call_command("list_api_keys", stdout=out)
    rows = {line.split()[4]: line for line in out.getvalue().splitlines()[1:]}
    assert "over_cap" in rows["spent"].split()
    assert "active" in rows["fresh"].split()


def test_the_admin_list_shows_over_cap(client, make_key, team):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    make_key(team, name="spent", max_usage_points=3, usage_points=3)
    html = client.get("/admin/keys/apikey/").content.decode()
    assert "over cap" in html
