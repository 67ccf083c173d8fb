"""Input that used to reach the database or a service unchecked: each is a 400 naming the
problem, never a 500."""

import pytest

from chat.models import ChatItem

RECORDS = "/api/core/chat/getPaginationRecords"
HISTORIES = "/api/core/chat/history/getHistories"
FEEDBACK = "/api/core/chat/feedback/updateUserFeedback"


def assert_400_naming(response, field: str):
    assert response.status_code == 400, response.content
    body = response.json()
    assert (body["code"], body["statusText"]) == (400, "badRequest")
    assert field in body["message"]
    assert field in body["data"]


@pytest.mark.parametrize("offset", [2**63, 2**63 - 1, 2**64 + 5, 10**30])
def test_a_huge_offset_on_histories_is_a_400(api, app, chat, offset):
    assert_400_naming(api.post(HISTORIES, {"appId": app.pk, "offset": offset}, format="json"), "offset")


@pytest.mark.parametrize("offset", [2**63, 2**63 - 1, 10**30])
def test_a_huge_offset_on_records_is_a_400(api, app, chat, offset):
    body = {"appId": app.pk, "chatId": chat.chat_id, "offset": offset}
    assert_400_naming(api.post(RECORDS, body, format="json"), "offset")


def test_a_large_but_sane_offset_is_an_empty_page(api, app, chat):
    body = {"appId": app.pk, "chatId": chat.chat_id, "offset": 2**31 - 1}
    response = api.post(RECORDS, body, format="json")
    assert response.status_code == 200
    assert response.json()["data"]["list"] == []


@pytest.mark.parametrize("chat_item_id", ["same", "other"])
def test_feedback_naming_the_record_twice_is_a_400(api, app, chat, chat_item_id):
    ai = ChatItem.objects.filter(chat=chat, obj="AI").first()
    body = {
        "appId": app.pk, "chatId": chat.chat_id, "dataId": ai.data_id,
        "chatItemId": ai.data_id if chat_item_id == "same" else "other-id", "userGoodFeedback": "yes",
    }
    response = api.post(FEEDBACK, body, format="json")
    assert_400_naming(response, "dataId")
    assert "chatItemId" in response.json()["message"]
    ai.refresh_from_db()
    assert ai.user_good_feedback is None


def test_feedback_by_the_older_name_alone_still_works(api, app, chat):
    ai = ChatItem.objects.filter(chat=chat, obj="AI").first()
    body = {"appId": app.pk, "chatId": chat.chat_id, "chatItemId": ai.data_id, "userGoodFeedback": "yes"}
    assert api.post(FEEDBACK, body, format="json").status_code == 200
    ai.refresh_from_db()
    assert ai.user_good_feedback == "yes"
