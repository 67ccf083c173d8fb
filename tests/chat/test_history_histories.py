"""Conversation lists and their management: getHistories, updateHistory, delHistory,
clearHistories, at the newest paths and the older aliases."""

from datetime import timedelta

import pytest
from django.utils import timezone

from chat.models import Chat, ChatItem

LIST = "/api/core/chat/history/getHistories"
UPDATE = "/api/core/chat/history/updateHistory"
DELETE = "/api/core/chat/history/delHistory"
CLEAR = "/api/core/chat/history/clearHistories"


def histories(api, **body):
    return api.post(LIST, body, format="json")


def chat_ids(response) -> list[str]:
    return [item["chatId"] for item in response.json()["data"]["list"]]


# --- getHistories ---------------------------------------------------------------------------


def test_list_answers_fastgpts_fields_in_the_envelope(api, app, chat):
    response = histories(api, appId=app.pk)
    assert response.status_code == 200
    body = response.json()
    assert (body["code"], body["statusText"], body["message"]) == (200, "", "")
    assert body["data"]["total"] == 1
    item = body["data"]["list"][0]
    assert item == {
        "chatId": "c1", "updateTime": item["updateTime"], "appId": app.pk, "customTitle": "",
        "title": chat.title, "top": False, "customUid": "user-1", "source": "api",
    }
    assert item["updateTime"].startswith(str(chat.updated_at.year))


def test_list_is_pinned_first_then_newest_first(api, app, make_chat):
    now = timezone.now()
    old = make_chat(app, chat_id="old", updated_at=now - timedelta(days=2))
    new = make_chat(app, chat_id="new", updated_at=now)
    pinned = make_chat(app, chat_id="pinned", top=True, updated_at=now - timedelta(days=9))
    assert chat_ids(histories(api, appId=app.pk)) == [pinned.chat_id, new.chat_id, old.chat_id]


def test_offset_and_page_size_page_through_without_repeats(api, app, make_chat):
    same_time = timezone.now()
    for n in range(7):
        make_chat(app, chat_id=f"c{n}", updated_at=same_time)  # ties: the order must still be total
    pages = [histories(api, appId=app.pk, offset=offset, pageSize=3) for offset in (0, 3, 6)]
    seen = [chat_id for page in pages for chat_id in chat_ids(page)]
    assert sorted(seen) == [f"c{n}" for n in range(7)]
    assert [len(chat_ids(page)) for page in pages] == [3, 3, 1]
    assert {page.json()["data"]["total"] for page in pages} == {7}


def test_page_size_defaults_to_20(api, app, make_chat):
    for _ in range(25):
        make_chat(app)
    data = histories(api, appId=app.pk).json()["data"]
    assert (len(data["list"]), data["total"]) == (20, 25)


def test_only_the_named_apps_chats_are_listed(api, app, second_app, make_chat):
    make_chat(app, chat_id="mine")
    make_chat(second_app, chat_id="other app")
    assert chat_ids(histories(api, appId=app.pk)) == ["mine"]


def test_source_filter(api, app, make_chat):
    make_chat(app, chat_id="from api", source="api")
    make_chat(app, chat_id="from web", source="online")
    assert chat_ids(histories(api, appId=app.pk, source="api")) == ["from api"]
    assert chat_ids(histories(api, appId=app.pk, source="online")) == ["from web"]
    assert len(chat_ids(histories(api, appId=app.pk, source=None))) == 2


def test_custom_uid_filter_lists_one_end_users_chats(api, app, make_chat):
    make_chat(app, chat_id="ann 1", custom_uid="ann")
    make_chat(app, chat_id="ann 2", custom_uid="ann")
    make_chat(app, chat_id="bob 1", custom_uid="bob")
    make_chat(app, chat_id="anonymous", custom_uid="")
    response = histories(api, appId=app.pk, customUid="ann")
    assert sorted(chat_ids(response)) == ["ann 1", "ann 2"]
    assert response.json()["data"]["total"] == 2
    # "" is a filter too (chats without a customUid), never "everyone's chats".
    assert chat_ids(histories(api, appId=app.pk, customUid="")) == ["anonymous"]
    assert len(chat_ids(histories(api, appId=app.pk))) == 4


def test_update_time_range_filter(api, app, make_chat):
    now = timezone.now()
    make_chat(app, chat_id="week ago", updated_at=now - timedelta(days=7))
    make_chat(app, chat_id="yesterday", updated_at=now - timedelta(days=1))
    make_chat(app, chat_id="now", updated_at=now)
    iso = lambda moment: moment.isoformat()  # noqa: E731
    between = histories(api, appId=app.pk, startTime=iso(now - timedelta(days=2)), endTime=iso(now - timedelta(hours=1)))
    assert chat_ids(between) == ["yesterday"]
    since = histories(api, appId=app.pk, startTime=iso(now - timedelta(days=2)))
    assert chat_ids(since) == ["now", "yesterday"]
    # FastGPT's own names for the same range.
    fastgpt_names = histories(api, appId=app.pk, startUpdateTime=iso(now - timedelta(days=2)), endUpdateTime=iso(now - timedelta(hours=1)))
    assert chat_ids(fastgpt_names) == ["yesterday"]


def test_create_time_range_filter(api, app, make_chat):
    now = timezone.now()
    make_chat(app, chat_id="old", created_at=now - timedelta(days=30), updated_at=now)
    make_chat(app, chat_id="recent", created_at=now - timedelta(hours=1), updated_at=now)
    response = histories(api, appId=app.pk, startCreateTime=(now - timedelta(days=1)).isoformat())
    assert chat_ids(response) == ["recent"]


def test_filters_combine(api, app, make_chat):
    now = timezone.now()
    make_chat(app, chat_id="hit", custom_uid="ann", source="api", updated_at=now)
    make_chat(app, chat_id="wrong source", custom_uid="ann", source="online", updated_at=now)
    make_chat(app, chat_id="too old", custom_uid="ann", source="api", updated_at=now - timedelta(days=5))
    response = histories(api, appId=app.pk, customUid="ann", source="api", startTime=(now - timedelta(days=1)).isoformat())
    assert chat_ids(response) == ["hit"]
    assert response.json()["data"]["total"] == 1


def test_an_app_key_lists_its_app(client_for, app_key, app, chat):
    response = client_for(app_key).post(LIST, {"appId": app.pk}, format="json")
    assert chat_ids(response) == ["c1"]


@pytest.mark.parametrize(
    "body,field",
    [
        ({}, "appId"),
        ({"appId": None}, "appId"),
        ({"appId": {"x": 1}}, "appId"),
        ({"appId": "x" * 65}, "appId"),
        ({"offset": -1}, "offset"),
        ({"offset": "abc"}, "offset"),
        ({"offset": 2**63}, "offset"),  # PostgreSQL: "bigint out of range" (a 500) before
        ({"offset": 2**31}, "offset"),
        ({"pageSize": 0}, "pageSize"),
        ({"pageSize": 101}, "pageSize"),
        ({"pageSize": "many"}, "pageSize"),
        ({"pageSize": True}, "pageSize"),
        ({"source": "fax"}, "source"),
        ({"customUid": ["a"]}, "customUid"),
        ({"startTime": "yesterday"}, "startTime"),
        ({"endTime": 12}, "endTime"),
    ],
)
def test_list_rejects_bad_input_with_400_naming_the_field(api, app, body, field):
    body = {"appId": app.pk, **body} if field != "appId" else body
    response = histories(api, **body)
    assert response.status_code == 400
    assert response.json()["statusText"] == "badRequest"
    assert field in response.json()["message"]


def test_list_accepts_the_largest_page_size(api, app, chat):
    assert histories(api, appId=app.pk, pageSize=100).status_code == 200


def test_list_rejects_a_body_that_is_not_an_object(api):
    assert api.post(LIST, [1, 2], format="json").status_code == 400


def test_list_of_an_unknown_app_is_404(api):
    response = histories(api, appId="000000000000000000000000")
    assert response.status_code == 404
    assert response.json()["statusText"] == "appUnExist"


def test_list_needs_a_key(client_for, app):
    response = client_for(None).post(LIST, {"appId": app.pk}, format="json")
    assert response.status_code == 401


# --- updateHistory --------------------------------------------------------------------------


def test_rename_sets_the_custom_title_and_keeps_update_time(api, app, chat):
    before = chat.updated_at
    response = api.post(UPDATE, {"appId": app.pk, "chatId": "c1", "customTitle": "Renamed"}, format="json")
    assert response.status_code == 200
    assert response.json()["data"] is None
    chat.refresh_from_db()
    assert (chat.custom_title, chat.top, chat.updated_at) == ("Renamed", False, before)
    assert histories(api, appId=app.pk).json()["data"]["list"][0]["customTitle"] == "Renamed"


def test_pin_and_unpin(api, app, chat, make_chat):
    make_chat(app, chat_id="newer", updated_at=timezone.now())
    api.post(UPDATE, {"appId": app.pk, "chatId": "c1", "top": True}, format="json")
    assert chat_ids(histories(api, appId=app.pk))[0] == "c1"
    api.post(UPDATE, {"appId": app.pk, "chatId": "c1", "top": False}, format="json")
    chat.refresh_from_db()
    assert chat.top is False
    assert chat_ids(histories(api, appId=app.pk))[0] == "newer"


def test_rename_and_pin_at_once_and_clear_a_title(api, app, chat):
    api.post(UPDATE, {"appId": app.pk, "chatId": "c1", "customTitle": "T", "top": True}, format="json")
    chat.refresh_from_db()
    assert (chat.custom_title, chat.top) == ("T", True)
    api.post(UPDATE, {"appId": app.pk, "chatId": "c1", "customTitle": ""}, format="json")
    chat.refresh_from_db()
    assert (chat.custom_title, chat.top) == ("", True)


@pytest.mark.parametrize(
    "body,field",
    [
        ({"chatId": "c1", "customTitle": "x"}, "appId"),
        ({"appId": "APP", "customTitle": "x"}, "chatId"),
        ({"appId": "APP", "chatId": "c1"}, "customTitle"),
        ({"appId": "APP", "chatId": "c1", "top": "maybe"}, "top"),
        ({"appId": "APP", "chatId": "c1", "customTitle": "x" * 201}, "customTitle"),
        ({"appId": "APP", "chatId": "x" * 251, "top": True}, "chatId"),
    ],
)
def test_update_rejects_bad_input(api, app, chat, body, field):
    body = {k: (app.pk if v == "APP" else v) for k, v in body.items()}
    response = api.post(UPDATE, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["message"]


def test_update_of_an_unknown_chat_is_404(api, app):
    response = api.post(UPDATE, {"appId": app.pk, "chatId": "nope", "top": True}, format="json")
    assert response.status_code == 404
    assert response.json()["statusText"] == "unAuthChat"


# --- delHistory -----------------------------------------------------------------------------


def test_delete_removes_the_chat_and_its_records(api, app, chat, make_chat):
    other = make_chat(app, chat_id="keep")
    response = api.delete(f"{DELETE}?appId={app.pk}&chatId=c1")
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert not Chat.objects.filter(pk=chat.pk).exists()
    assert not ChatItem.objects.filter(chat_id=chat.pk).exists()
    assert Chat.objects.filter(pk=other.pk).exists()


def test_delete_bad_input_and_unknown_chat(api, app, chat):
    assert "chatId" in api.delete(f"{DELETE}?appId={app.pk}").json()["message"]
    assert api.delete(f"{DELETE}?appId={app.pk}").status_code == 400
    assert "appId" in api.delete(f"{DELETE}?chatId=c1").json()["message"]
    assert api.delete(f"{DELETE}?appId={app.pk}&chatId=nope").status_code == 404
    assert api.post(DELETE, {}, format="json").status_code == 405


# --- clearHistories -------------------------------------------------------------------------


def test_clear_deletes_only_the_apps_api_chats(api, app, second_app, make_chat, add_turn):
    api_chat = make_chat(app, source="api")
    add_turn(api_chat)
    web_chat = make_chat(app, source="online")
    shared = make_chat(app, source="share")
    other_app_chat = make_chat(second_app, source="api")
    response = api.delete(f"{CLEAR}?appId={app.pk}")
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert set(Chat.objects.values_list("pk", flat=True)) == {web_chat.pk, shared.pk, other_app_chat.pk}
    assert not ChatItem.objects.filter(chat_id=api_chat.pk).exists()


def test_clear_bad_input_and_unknown_app(api):
    assert api.delete(CLEAR).status_code == 400
    assert "appId" in api.delete(CLEAR).json()["message"]
    assert api.delete(f"{CLEAR}?appId=000000000000000000000000").status_code == 404


# --- older paths ----------------------------------------------------------------------------


def test_the_older_paths_are_aliases(api, app, make_chat):
    make_chat(app, chat_id="a")
    make_chat(app, chat_id="b")
    assert sorted(chat_ids(api.post("/api/core/chat/getHistories", {"appId": app.pk}, format="json"))) == ["a", "b"]
    assert api.post("/api/core/chat/updateHistory", {"appId": app.pk, "chatId": "a", "customTitle": "A!"}, format="json").status_code == 200
    assert Chat.objects.get(chat_id="a").custom_title == "A!"
    assert api.delete(f"/api/core/chat/delHistory?appId={app.pk}&chatId=a").status_code == 200
    assert not Chat.objects.filter(chat_id="a").exists()
    assert api.delete(f"/api/core/chat/clearHistories?appId={app.pk}").status_code == 200
    assert not Chat.objects.exists()


def test_aliases_answer_errors_like_the_newest_paths(api, app):
    newest = histories(api, appId=app.pk, pageSize=0)
    older = api.post("/api/core/chat/getHistories", {"appId": app.pk, "pageSize": 0}, format="json")
    assert newest.status_code == older.status_code == 400
    assert newest.json() == older.json()


def test_aliases_are_left_out_of_the_schema_and_newest_paths_are_in(db):
    from rest_framework.test import APIClient

    paths = APIClient().get("/api/schema/?format=json").json()["paths"]
    assert {LIST, UPDATE, DELETE, CLEAR} <= paths.keys()
    assert "/api/core/chat/getHistories" not in paths
    assert "/api/core/chat/getRecords_v2" not in paths
    assert "/api/core/chat/record/getRecords_v2" in paths
