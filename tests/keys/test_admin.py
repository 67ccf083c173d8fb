"""The key admin: a new key's plaintext is shown once, the hash never."""

import re

import pytest
from django.contrib.auth.models import User

from keys.hashing import hash_key
from keys.models import ApiKey

KEY_RE = re.compile(r"fastgpt-[A-Za-z0-9]{48}")
TOKEN_RE = re.compile(r'name="issue_token" value="([^"]+)"')


def form_token(admin_client, url="/admin/keys/apikey/add/") -> str:
    """The one-time token of a freshly opened add form (or the changelist's action bar)."""
    return TOKEN_RE.search(admin_client.get(url).content.decode()).group(1)


def add_key(admin_client, token, **fields):
    return admin_client.post(
        "/admin/keys/apikey/add/",
        {"max_usage_points": "-1", "expires_at_0": "", "expires_at_1": "", "issue_token": token, **fields},
    )


def rotate(admin_client, key_ids, token):
    return admin_client.post(
        "/admin/keys/apikey/", {"action": "rotate_selected", "_selected_action": key_ids, "issue_token": token}
    )


@pytest.fixture
def admin_client(client, db):
    user = User.objects.create_superuser("root", "root@example.com", "pw")
    client.force_login(user)
    return client


def test_adding_a_key_shows_its_plaintext_once(admin_client, team, app):
    response = add_key(
        admin_client, form_token(admin_client), team=team.pk, app=app.pk, name="from admin", max_usage_points="50"
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
    response = add_key(admin_client, form_token(admin_client), team=team.pk, app=other_app.pk, name="x")
    assert response.status_code == 200
    assert "another team" in response.content.decode()
    assert not ApiKey.objects.exists()


def test_changelist_shows_scope_usage_and_state(admin_client, global_key, app_key):
    page = admin_client.get("/admin/keys/apikey/").content.decode()
    assert "global" in page and "app: Support bot" in page
    assert "0 / unlimited" in page
    assert "active" in page


def test_rotate_action_shows_the_new_key_once(admin_client, global_key):
    response = rotate(admin_client, [global_key.row.pk], form_token(admin_client, "/admin/keys/apikey/"))
    html = response.content.decode()
    new_keys = set(KEY_RE.findall(html))
    assert len(new_keys) == 1 and global_key.plaintext not in new_keys
    new_row = ApiKey.objects.get(key_hash=hash_key(new_keys.pop()))
    assert ApiKey.objects.get(pk=global_key.row.pk).replaced_by == new_row
    assert "rotating out" in admin_client.get("/admin/keys/apikey/").content.decode()


def test_revoke_asks_for_confirmation_first(admin_client, global_key):
    asked = admin_client.post("/admin/keys/apikey/", {"action": "revoke_selected", "_selected_action": [global_key.row.pk]})
    assert asked.status_code == 200
    assert "Yes, revoke" in asked.content.decode()
    assert ApiKey.objects.get(pk=global_key.row.pk).state() == "active"
    admin_client.post(
        "/admin/keys/apikey/",
        {"action": "revoke_selected", "_selected_action": [global_key.row.pk], "post": "yes"},
    )
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


# --- forms that issue keys cannot be replayed -----------------------------------------------


def test_a_resubmitted_add_form_issues_nothing(admin_client, team):
    token = form_token(admin_client)
    first = add_key(admin_client, token, team=team.pk, name="once")
    assert len(set(KEY_RE.findall(first.content.decode()))) == 1
    again = add_key(admin_client, token, team=team.pk, name="once")  # the browser's reload
    html = again.content.decode()
    assert KEY_RE.findall(html) == []
    assert "already submitted" in html
    assert ApiKey.objects.count() == 1
    # A new form issues again.
    add_key(admin_client, form_token(admin_client), team=team.pk, name="twice")
    assert ApiKey.objects.count() == 2


def test_the_session_and_database_never_hold_the_plaintext(admin_client, team):
    from django.contrib.sessions.models import Session

    from keys.models import IssueFormToken

    response = add_key(admin_client, form_token(admin_client), team=team.pk, name="secret")
    plaintext = KEY_RE.findall(response.content.decode())[0]
    stored = [s.session_data for s in Session.objects.all()] + list(IssueFormToken.objects.values_list("token", flat=True))
    assert all(plaintext not in value and hash_key(plaintext) not in value for value in stored)


def test_a_resubmitted_rotation_issues_nothing(admin_client, global_key):
    token = form_token(admin_client, "/admin/keys/apikey/")
    first = rotate(admin_client, [global_key.row.pk], token)
    assert len(set(KEY_RE.findall(first.content.decode()))) == 1
    again = rotate(admin_client, [global_key.row.pk], token)
    assert KEY_RE.findall(again.content.decode()) == []
    assert ApiKey.objects.count() == 2
    old = ApiKey.objects.get(pk=global_key.row.pk)
    assert old.replaced_by.replaces == old  # still linked to the one replacement


def test_a_key_rotating_out_cannot_be_rotated_again(admin_client, global_key):
    rotate(admin_client, [global_key.row.pk], form_token(admin_client, "/admin/keys/apikey/"))
    grace_end = ApiKey.objects.get(pk=global_key.row.pk).revoked_at
    response = rotate(admin_client, [global_key.row.pk], form_token(admin_client, "/admin/keys/apikey/"))
    assert KEY_RE.findall(response.content.decode()) == []
    assert ApiKey.objects.count() == 2
    assert ApiKey.objects.get(pk=global_key.row.pk).revoked_at == grace_end  # grace not restarted


def test_the_issued_page_has_a_copy_button(admin_client, team):
    html = add_key(admin_client, form_token(admin_client), team=team.pk, name="c").content.decode()
    assert 'class="copy-key"' in html and "navigator.clipboard.writeText" in html


# --- the key list ----------------------------------------------------------------------------


def listed(admin_client, query: str) -> set[str]:
    html = admin_client.get(f"/admin/keys/apikey/?{query}").content.decode()
    return {name for name in ("k-active", "k-rotating", "k-revoked", "k-expired", "k-capped", "k-app") if f">{name}<" in html}


def test_the_list_filters_by_state_and_scope(admin_client, make_key, team, app, clock):
    from datetime import timedelta

    from keys import services

    make_key(team, name="k-active")
    services.rotate_api_key(key=make_key(team, name="k-rotating").row)
    services.revoke_api_key(key=make_key(team, name="k-revoked").row)
    make_key(team, name="k-expired", expires_at=clock.now - timedelta(hours=1))
    make_key(team, name="k-capped", max_usage_points=3, usage_points=3)
    make_key(team, app, name="k-app")
    # (the rotation made a second active "k-rotating" key)
    assert listed(admin_client, "state=active") == {"k-active", "k-rotating", "k-app"}
    assert listed(admin_client, "state=rotating") == {"k-rotating"}
    assert listed(admin_client, "state=revoked") == {"k-revoked"}
    assert listed(admin_client, "state=expired") == {"k-expired"}
    assert listed(admin_client, "state=over_cap") == {"k-capped"}
    assert listed(admin_client, "scope=app") == {"k-app"}
    assert "k-app" not in listed(admin_client, "scope=global")
    page = admin_client.get("/admin/keys/apikey/").content.decode()
    assert "over cap" in page and "global (whole team)" in page


def test_a_pasted_whole_key_finds_its_row_through_a_post_form(admin_client, make_key, team):
    wanted = make_key(team, name="wanted")
    make_key(team, name="other")
    page = admin_client.get("/admin/keys/apikey/").content.decode()
    assert "/admin/keys/apikey/find/" in page  # linked from the list
    form_page = admin_client.get("/admin/keys/apikey/find/").content.decode()
    crumbs = form_page.split('<div class="breadcrumbs">', 1)[1].split("</div>", 1)[0]
    assert 'href="/admin/keys/apikey/"' in crumbs and "Find a key" in crumbs  # back to the list, named

    found = admin_client.post("/admin/keys/apikey/find/", {"key": f"  {wanted.plaintext} "})
    assert found.status_code == 302
    assert found["Location"] == f"/admin/keys/apikey/{wanted.row.pk}/change/"

    legacy = admin_client.post("/admin/keys/apikey/find/", {"key": f"{wanted.plaintext}-someAppId"})
    assert legacy["Location"] == f"/admin/keys/apikey/{wanted.row.pk}/change/"


def test_a_key_that_matches_nothing_is_said_so_and_not_echoed(admin_client, make_key, team):
    make_key(team, name="wanted")
    missing = "fastgpt-" + "x" * 40
    response = admin_client.post("/admin/keys/apikey/find/", {"key": missing})
    html = response.content.decode()
    assert response.status_code == 200 and "No key matches" in html
    assert missing not in html  # a password field: the secret is not written back
    assert "no-store" in response["Cache-Control"]


def test_the_find_page_is_for_staff_only(client, make_key, team):
    wanted = make_key(team, name="wanted")
    response = client.post("/admin/keys/apikey/find/", {"key": wanted.plaintext})
    assert response.status_code == 302 and "/admin/login/" in response["Location"]


def test_a_whole_key_in_the_search_box_is_not_searched_and_steers_to_the_form(admin_client, make_key, team):
    wanted = make_key(team, name="wanted")
    from urllib.parse import quote

    html = admin_client.get(f"/admin/keys/apikey/?q={quote(wanted.plaintext)}", follow=True).content.decode()
    assert ">wanted<" not in html
    assert "Find a key by its secret" in html and "access logs" in html


def test_the_list_counts_each_keys_chats_and_turns(admin_client, app_key, make_key, team, app):
    from tests.chat.completion_calls import ask, post

    other = make_key(team, app, name="other app key")
    for n in range(3):
        assert post(ask(f"q{n}"), key=app_key).status_code == 200  # 3 new chats
    assert post(ask("again", chatId="c1"), key=other).status_code == 200
    assert post(ask("more", chatId="c1"), key=other).status_code == 200
    from chat.models import Chat

    assert Chat.objects.get(chat_id="c1").api_key == other.row
    assert {c.api_key_id for c in Chat.objects.exclude(chat_id="c1")} == {app_key.row.pk}
    page = admin_client.get("/admin/keys/apikey/?q=other+app+key").content.decode()
    assert '<td class="field-chat_count">1</td>' in page
    assert '<td class="field-turn_count">2</td>' in page
    page = admin_client.get("/admin/keys/apikey/?q=app").content.decode()
    assert '<td class="field-chat_count">3</td>' in page
    assert admin_client.get(f"/admin/keys/apikey/{other.row.pk}/change/").status_code == 200


def test_a_chats_transcript_names_the_key_that_started_it(admin_client, app_key):
    from chat.models import Chat
    from tests.chat.completion_calls import ask, post

    assert post(ask("hi"), key=app_key).status_code == 200
    chat = Chat.objects.get()
    page = admin_client.get(f"/admin/chat/chat/{chat.pk}/change/").content.decode()
    assert f'href="/admin/keys/apikey/{app_key.row.pk}/change/">{app_key.row.prefix}…</a>' in page
