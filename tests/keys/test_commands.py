"""The key management commands: output, effects and error paths."""

import re
from datetime import timedelta
from io import StringIO

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from chat.models import App
from keys.hashing import hash_key
from keys.models import ApiKey, Team

KEY_RE = re.compile(r"fastgpt-[A-Za-z0-9]{48}")


def run(*args):
    out, err = StringIO(), StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def test_create_global_key_prints_it_once_and_stores_its_hash(team):
    out, err = run("create_api_key", "--team", "acme", "--name", "ci")
    key = out.strip()
    assert KEY_RE.fullmatch(key)
    row = ApiKey.objects.get(key_hash=hash_key(key))
    assert (row.team, row.app, row.name, row.max_usage_points) == (team, None, "ci", -1)
    assert "global" in err and "not shown again" in err


def test_create_app_key_with_expiry_and_cap(team, app, clock):
    out, _ = run("create_api_key", "--team", team.pk, "--app", app.name, "--expires-in", "7d", "--max-usage", "100")
    row = ApiKey.objects.get(key_hash=hash_key(out.strip()))
    assert row.app == app
    assert row.expires_at == clock.now + timedelta(days=7)
    assert row.max_usage_points == 100


def test_create_with_expires_at(team):
    out, _ = run("create_api_key", "--team", "acme", "--expires-at", "2030-01-02T03:04:05Z")
    assert ApiKey.objects.get(key_hash=hash_key(out.strip())).expires_at.year == 2030


@pytest.mark.parametrize(
    "args,message",
    [
        (["--team", "nope"], "No team 'nope'"),
        (["--team", "acme", "--app", "nope"], "No app 'nope' in team 'acme'"),
        (["--team", "acme", "--max-usage", "-5"], "--max-usage"),
    ],
)
def test_create_errors(team, args, message):
    with pytest.raises(CommandError, match=message):
        run("create_api_key", *args)
    assert not ApiKey.objects.exists()


def test_create_refuses_another_teams_app(team, other_app):
    with pytest.raises(CommandError, match="No app"):
        run("create_api_key", "--team", "acme", "--app", other_app.pk)


def test_bad_duration_is_an_argument_error(team):
    with pytest.raises(CommandError, match="expires-in"):
        run("create_api_key", "--team", "acme", "--expires-in", "soon")


def test_rotate_prints_a_new_key_and_sets_the_grace(global_key, clock):
    out, err = run("rotate_api_key", str(global_key.row.pk))
    new_key = out.strip()
    assert KEY_RE.fullmatch(new_key) and new_key != global_key.plaintext
    old = ApiKey.objects.get(pk=global_key.row.pk)
    assert old.revoked_at == clock.now + timedelta(hours=24)
    assert old.replaced_by.key_hash == hash_key(new_key)
    assert "stops working" in err


def test_rotate_by_prefix_with_custom_grace_and_now(global_key, make_key, team, clock):
    run("rotate_api_key", global_key.row.prefix, "--grace", "30m")
    assert ApiKey.objects.get(pk=global_key.row.pk).revoked_at == clock.now + timedelta(minutes=30)
    other = make_key(team)
    run("rotate_api_key", str(other.row.pk), "--now")
    assert ApiKey.objects.get(pk=other.row.pk).revoked_at == clock.now


def test_rotate_errors(global_key):
    with pytest.raises(CommandError, match="No API key '999'"):
        run("rotate_api_key", "999")
    run("revoke_api_key", str(global_key.row.pk))
    with pytest.raises(CommandError, match="revoked key cannot be rotated"):
        run("rotate_api_key", str(global_key.row.pk))


def test_revoke(global_key, clock):
    out, _ = run("revoke_api_key", str(global_key.row.pk))
    assert "Revoked key" in out
    assert ApiKey.objects.get(pk=global_key.row.pk).revoked_at == clock.now
    with pytest.raises(CommandError, match="No API key 'fastgpt-zzz'"):
        run("revoke_api_key", "fastgpt-zzz")


def test_list_shows_keys_but_never_secrets(global_key, app_key, other_global_key):
    out, _ = run("list_api_keys")
    assert global_key.row.prefix in out and app_key.row.prefix in out and other_global_key.row.prefix in out
    for key in (global_key, app_key, other_global_key):
        assert key.plaintext not in out
        assert key.row.key_hash not in out
    assert "global" in out and f"app:{app_key.row.app_id}" in out

    only_acme, _ = run("list_api_keys", "--team", "acme")
    assert other_global_key.row.prefix not in only_acme
    with pytest.raises(CommandError, match="No team"):
        run("list_api_keys", "--team", "nope")


def test_bootstrap_demo_is_idempotent_and_its_printed_keys_work(db, client_for):
    from tests.issued_keys import IssuedKey

    first, _ = run("bootstrap_demo")
    second, _ = run("bootstrap_demo", "--base-url", "http://example.test:9000")
    assert Team.objects.filter(name="demo").count() == 1
    assert App.objects.filter(name="Demo app").count() == 1
    assert "http://example.test:9000/api/core/dataset/create" in second

    old_keys, new_keys = KEY_RE.findall(first), KEY_RE.findall(second)
    assert len(set(old_keys)) == len(set(new_keys)) == 2
    global_new = IssuedKey(None, new_keys[0])
    assert client_for(global_new).post("/api/core/dataset/list", {}, format="json").status_code == 200
    global_old = IssuedKey(None, old_keys[0])
    assert client_for(global_old).post("/api/core/dataset/list", {}, format="json").status_code == 401
    active = [k for k in ApiKey.objects.filter(team__name="demo") if k.state() == "active"]
    assert sorted(k.name for k in active) == ["demo app key", "demo global key"]
