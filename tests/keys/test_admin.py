"""The key admin: a new key's plaintext is shown once, the hash never."""

import re

import pytest
from django.contrib.auth.models import User

from keys.hashing import hash_key
from keys.models import ApiKey

KEY_RE = re.compile(r"fastgpt-[A-Za-z0-9]{48}")


@pytest.fixture
def admin_client(client, db):
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def test_adding_a_key_shows_its_plaintext_once(admin_client, team, app):
    response = admin_client.post(
        "/admin/keys/apikey/add/",
        {"team": team.pk, "app": app.pk, "name": "from admin", "max_usage_points": "50", "expires_at_0": "", "expires_at_1": ""},
    )
    assert response.status_code == 200
    assert "no-store" in response["Cache-Control"]
    html = response.content.decode()
    shown = KEY_RE.findall(html)
    assert len(set(shown)) == 1
    row = ApiKey.objects.get(key_hash=hash_key(shown[0]))
    assert (row.team, row.app, row.name, row.max_usage_points) == (team, app, "from admin", 50)

    for url in ("/admin/keys/apikey/", f"/admin/keys/apikey/{row.pk}/change/", f"/admin/keys/apikey/{row.pk}/history/"):
        page = admin_client.get(url).content.decode()
        assert shown[0] not in page
        assert row.key_hash not in page
        assert row.prefix in page or url.endswith("history/")


def test_add_form_refuses_an_app_of_another_team(admin_client, team, other_app):
    response = admin_client.post(
        "/admin/keys/apikey/add/",
        {"team": team.pk, "app": other_app.pk, "name": "x", "max_usage_points": "-1"},
    )
    assert response.status_code == 200
    assert "another team" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_changelist_shows_scope_usage_and_state(admin_client, global_key, app_key):
    page = admin_client.get("/admin/keys/apikey/").content.decode()
    assert "global" in page and "app: Support bot" in page
    assert "0 / unlimited" in page
    assert "active" in page


def test_rotate_action_shows_the_new_key_once(admin_client, global_key):
    response = admin_client.post(
        "/admin/keys/apikey/", {"action": "rotate_selected", "_selected_action": [global_key.row.pk]}
    )
    html = response.content.decode()
    new_keys = set(KEY_RE.findall(html))
    assert len(new_keys) == 1 and global_key.plaintext not in new_keys
    new_row = ApiKey.objects.get(key_hash=hash_key(new_keys.pop()))
    assert ApiKey.objects.get(pk=global_key.row.pk).replaced_by == new_row
    assert "rotating out" in admin_client.get("/admin/keys/apikey/").content.decode()


def test_revoke_action(admin_client, global_key):
    admin_client.post("/admin/keys/apikey/", {"action": "revoke_selected", "_selected_action": [global_key.row.pk]})
    assert ApiKey.objects.get(pk=global_key.row.pk).state() == "revoked"


def test_change_form_cannot_move_a_key_to_another_team_or_app(admin_client, global_key, other_team, app):
    row = global_key.row
    admin_client.post(
        f"/admin/keys/apikey/{row.pk}/change/",
        {"team": other_team.pk, "app": app.pk, "name": "renamed", "max_usage_points": "5", "expires_at_0": "", "expires_at_1": ""},
    )
    row.refresh_from_db()
    assert (row.team_id, row.app_id, row.name, row.max_usage_points) == (global_key.row.team_id, None, "renamed", 5)


@pytest.mark.parametrize("url", ["/admin/keys/team/", "/admin/chat/app/", "/admin/datasets/dataset/", "/admin/keys/team/add/"])
def test_other_admin_pages_render(admin_client, app, url):
    assert admin_client.get(url).status_code == 200
