"""Scopes on every chat-history endpoint.

An app key reaches only its own app; a global key any app of its team; another team's app or
chat is 404 with the very body of an id that exists nowhere; and a chat is only found through
its own app's id.
"""

import pytest

from chat.models import Chat, ChatItem


def call_table(app_id: str, chat_id: str, data_id: str) -> dict:
    """Every endpoint, as (method, path, JSON body or None), aimed at the given ids."""
    ids = {"appId": app_id, "chatId": chat_id}
    query = f"appId={app_id}&chatId={chat_id}"
    return {
        "getHistories": ("post", "/api/core/chat/history/getHistories", {"appId": app_id}),
        "updateHistory": ("post", "/api/core/chat/history/updateHistory", {**ids, "customTitle": "hacked"}),
        "delHistory": ("delete", f"/api/core/chat/history/delHistory?{query}", None),
        "clearHistories": ("delete", f"/api/core/chat/history/clearHistories?appId={app_id}", None),
        "init": ("get", f"/api/core/chat/init?{query}", None),
        "getPaginationRecords": ("post", "/api/core/chat/getPaginationRecords", ids),
        "getRecords_v2": ("post", "/api/core/chat/record/getRecords_v2", ids),
        "getResData": ("get", f"/api/core/chat/getResData?{query}&dataId={data_id}", None),
        "itemDelete": ("delete", f"/api/core/chat/item/delete?{query}&contentId={data_id}", None),
        "feedback": ("post", "/api/core/chat/feedback/updateUserFeedback", {**ids, "dataId": data_id, "userBadFeedback": "x"}),
        "questionGuide": ("post", "/api/core/ai/agent/v2/createQuestionGuide", ids),
        "questionGuideOld": ("post", "/api/core/ai/agent/createQuestionGuide", {"appId": app_id, "messages": [{"role": "user", "content": "hi"}]}),
    }


ENDPOINTS = list(call_table("a", "c", "d"))
# Endpoints that name only an app (no chat): a wrong chat cannot matter to them.
APP_ONLY = {"getHistories", "clearHistories", "init", "questionGuideOld"}


def send(client, method, path, body):
    if body is None:
        return getattr(client, method)(path)
    return getattr(client, method)(path, body, format="json")


def call(client, endpoint, app_id, chat_id, data_id):
    return send(client, *call_table(app_id, chat_id, data_id)[endpoint])


@pytest.fixture
def world(team, other_team, app, second_app, other_app, make_chat, add_turn):
    """Our app and a second app of our team, another team's app, each with one chat."""
    chats = {}
    for name, owner in (("ours", app), ("second", second_app), ("theirs", other_app)):
        conversation = make_chat(owner, chat_id=f"{name}-chat", source="api")
        add_turn(conversation)
        chats[name] = conversation
    return chats


def answer_id(chat: Chat) -> str:
    return ChatItem.objects.get(chat=chat, obj="AI").data_id


def unchanged(chat: Chat) -> bool:
    """True while nothing has touched the chat or its records."""
    fresh = Chat.objects.filter(pk=chat.pk).first()
    return (
        fresh is not None
        and fresh.custom_title == ""
        and ChatItem.objects.filter(chat=chat).count() == 2
        and ChatItem.objects.get(chat=chat, obj="AI").user_bad_feedback is None
    )


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_app_key_works_on_its_own_app(client_for, app_key, world, endpoint):
    chat = world["ours"]
    response = call(client_for(app_key), endpoint, chat.app_id, chat.chat_id, answer_id(chat))
    assert response.status_code == 200, response.json()
    assert response.json()["code"] == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_an_app_key_gets_404_for_another_app_of_its_team(client_for, app_key, world, endpoint):
    chat = world["second"]
    response = call(client_for(app_key), endpoint, chat.app_id, chat.chat_id, answer_id(chat))
    assert response.status_code == 404
    assert response.json()["statusText"] == "appUnExist"
    assert unchanged(chat)


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_a_global_key_reaches_every_app_of_its_team(client_for, global_key, world, endpoint):
    chat = world["second"]
    response = call(client_for(global_key), endpoint, chat.app_id, chat.chat_id, answer_id(chat))
    assert response.status_code == 200, response.json()


@pytest.mark.parametrize("endpoint", ENDPOINTS)
@pytest.mark.parametrize("key", ["global_key", "app_key"])
def test_another_teams_app_and_chat_are_404_like_nothing(client_for, request, world, endpoint, key):
    client = client_for(request.getfixturevalue(key))
    theirs = world["theirs"]
    response = call(client, endpoint, theirs.app_id, theirs.chat_id, answer_id(theirs))
    nowhere = call(client, endpoint, "000000000000000000000000", "no-chat", "no-data")
    assert response.status_code == nowhere.status_code == 404
    assert response.json() == nowhere.json()
    assert unchanged(theirs)


@pytest.mark.parametrize("endpoint", sorted(set(ENDPOINTS) - APP_ONLY))
def test_a_chat_is_only_found_through_its_own_app(client_for, global_key, world, endpoint):
    """Our app's id with the second app's chat: the chat is not in that app, so 404."""
    ours, second = world["ours"], world["second"]
    response = call(client_for(global_key), endpoint, ours.app_id, second.chat_id, answer_id(second))
    assert response.status_code == 404
    assert response.json()["statusText"] == "unAuthChat"
    assert unchanged(second)


@pytest.mark.parametrize("endpoint", sorted(set(ENDPOINTS) - APP_ONLY - {"questionGuide"}))
def test_a_record_of_another_chat_is_not_found(client_for, global_key, world, make_chat, add_turn, endpoint):
    """The right app and chat, but a dataId of another chat of that app."""
    ours = world["ours"]
    elsewhere = make_chat(ours.app, chat_id="elsewhere")
    add_turn(elsewhere)
    response = call(client_for(global_key), endpoint, ours.app_id, ours.chat_id, answer_id(elsewhere))
    if endpoint in {"getResData", "itemDelete", "feedback"}:
        assert response.status_code == 404
        assert unchanged(elsewhere)
    else:  # endpoints that take no dataId are unaffected
        assert response.status_code == 200


@pytest.mark.parametrize("endpoint", ENDPOINTS)
def test_every_endpoint_needs_a_key(client_for, world, endpoint):
    chat = world["ours"]
    response = call(client_for(None), endpoint, chat.app_id, chat.chat_id, answer_id(chat))
    assert response.status_code == 401
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert unchanged(chat)


def test_clear_histories_with_an_app_key_leaves_other_apps_alone(client_for, app_key, world):
    response = client_for(app_key).delete(f"/api/core/chat/history/clearHistories?appId={world['ours'].app_id}")
    assert response.status_code == 200
    assert not Chat.objects.filter(pk=world["ours"].pk).exists()
    assert unchanged(world["second"]) and unchanged(world["theirs"])


def test_a_revoked_app_key_is_refused(client_for, make_key, team, app, world):
    from keys.services import revoke_api_key

    key = make_key(team, app, name="soon revoked")
    revoke_api_key(key=key.row)
    response = call(client_for(key), "getHistories", app.pk, "", "")
    assert response.status_code == 401

