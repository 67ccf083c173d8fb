"""Records of one conversation: init, getPaginationRecords (offset and cursor paging),
getRecords_v2, getResData, item/delete and feedback/updateUserFeedback."""

import pytest

from chat.models import ChatItem

from .conftest import quote

INIT = "/api/core/chat/init"
RECORDS = "/api/core/chat/getPaginationRecords"
RECORDS_V2 = "/api/core/chat/record/getRecords_v2"
RES_DATA = "/api/core/chat/getResData"
ITEM_DELETE = "/api/core/chat/item/delete"
FEEDBACK = "/api/core/chat/feedback/updateUserFeedback"


def records(api, path=RECORDS, **body):
    return api.post(path, body, format="json")


def data_ids(response) -> list[str]:
    return [item["dataId"] for item in response.json()["data"]["list"]]


@pytest.fixture
def long_chat(make_chat, add_turn, app):
    """A conversation of 25 turns (50 records): h1 a1 … in order, data ids known by position."""
    conversation = make_chat(app, chat_id="long")
    for n in range(25):
        add_turn(conversation, f"q{n}", f"a{n}")
    return conversation


def ids_of(chat) -> list[str]:
    return list(ChatItem.objects.filter(chat=chat).order_by("id").values_list("data_id", flat=True))


# --- init -----------------------------------------------------------------------------------


def test_init_returns_the_chat_and_the_apps_public_config(api, app, chat):
    app.intro, app.welcome_text, app.avatar = "Helps with X", "Hello! Ask me.", "/bot.svg"
    app.save()
    response = api.get(f"{INIT}?appId={app.pk}&chatId=c1")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["chatId"] == "c1"
    assert data["appId"] == app.pk
    assert data["title"] == chat.title
    assert data["variables"] == {"name": "Ann"}
    assert data["app"]["name"] == "Support bot"
    assert data["app"]["intro"] == "Helps with X"
    assert data["app"]["avatar"] == "/bot.svg"
    assert data["app"]["type"] == "simple"
    assert data["app"]["pluginInputs"] == []
    assert data["app"]["chatModels"] == ["builtin-offline-responder"]
    config = data["app"]["chatConfig"]
    assert config == {
        "welcomeText": "Hello! Ask me.",
        "variables": [],
        "questionGuide": False,
        "ttsConfig": {"type": "none"},
        "whisperConfig": {"open": False, "autoSend": False, "autoTTSResponse": False},
        "chatInputGuide": {"open": False, "textList": [], "customUrl": ""},
        "instruction": "",
        "fileSelectConfig": {"canSelectFile": False, "canSelectImg": False, "maxFiles": 0},
        "_id": app.pk,
    }


def test_init_shows_the_custom_title(api, app, chat):
    chat.custom_title = "Mine"
    chat.save()
    assert api.get(f"{INIT}?appId={app.pk}&chatId=c1").json()["data"]["title"] == "Mine"


@pytest.mark.parametrize("chat_id", ["brand-new", ""])
def test_init_of_a_new_or_absent_chat_id_has_no_variables(api, app, chat, chat_id):
    suffix = f"&chatId={chat_id}" if chat_id else ""
    response = api.get(f"{INIT}?appId={app.pk}{suffix}")
    assert response.status_code == 200
    data = response.json()["data"]
    assert (data["chatId"], data["variables"], data["title"]) == (chat_id, {}, "")
    assert data["app"]["name"] == "Support bot"


def test_init_bad_input(api, app):
    assert api.get(INIT).status_code == 400
    assert "appId" in api.get(INIT).json()["message"]
    assert api.get(f"{INIT}?appId={app.pk}&chatId={'x' * 251}").status_code == 400
    assert api.get(f"{INIT}?appId=000000000000000000000000").status_code == 404


# --- getPaginationRecords: shape ------------------------------------------------------------


def test_records_have_fastgpts_shape(api, app, chat):
    response = records(api, appId=app.pk, chatId="c1")
    assert response.status_code == 200
    data = response.json()["data"]
    assert data["total"] == 4
    human, ai = data["list"][0], data["list"][1]
    stored_human, stored_ai = ChatItem.objects.filter(chat=chat).order_by("id")[:2]

    assert human == {
        "_id": str(stored_human.pk), "id": stored_human.data_id, "dataId": stored_human.data_id,
        "obj": "Human", "value": [{"type": "text", "text": {"content": "What is X?"}}],
        "customFeedbacks": [], "time": human["time"],
    }
    assert ai["obj"] == "AI"
    assert ai["dataId"] == stored_ai.data_id
    assert ai["value"] == [{"type": "text", "text": {"content": "X is a thing."}}]
    assert ai["customFeedbacks"] == []
    assert ai["totalQuoteList"] == [quote(1), quote(2)]
    assert ai["totalRunningTime"] == 1.21
    assert ai["llmModuleAccount"] == 1
    assert ai["historyPreviewLength"] == 1
    assert ai["durationSeconds"] == 1.25
    # Empty optional fields are left out.
    assert not {"userGoodFeedback", "userBadFeedback", "errorMsg", "interrupted", "responseData"} & ai.keys()


def test_ai_records_show_feedback_errors_and_interruptions(api, app, make_chat, add_turn):
    conversation = make_chat(app, chat_id="x")
    add_turn(conversation, "q", "", error="Provider timed out", interrupted=True, good="yes", bad="")
    ai = records(api, appId=app.pk, chatId="x").json()["data"]["list"][1]
    assert ai["errorMsg"] == "Provider timed out"
    assert ai["interrupted"] is True
    assert ai["userGoodFeedback"] == "yes"
    assert ai["userBadFeedback"] == ""
    assert ai["value"] == []


def test_images_in_a_question_are_kept_as_typed_parts(api, app, make_chat, add_turn):
    conversation = make_chat(app, chat_id="x")
    add_turn(conversation, "What is this?", "A cat.", images=["https://img.example/cat.png"])
    human = records(api, appId=app.pk, chatId="x").json()["data"]["list"][0]
    assert human["value"][1] == {"type": "file", "file": {"type": "image", "name": "", "url": "https://img.example/cat.png"}}


def test_nested_node_responses_count_in_the_totals(api, app, make_chat):
    conversation = make_chat(app, chat_id="x")
    ChatItem.objects.create(
        chat=conversation, data_id="ai", obj="AI", value=[],
        response_data=[
            {"moduleType": "tools", "runningTime": 1.0, "toolDetail": [
                {"moduleType": "datasetSearchNode", "runningTime": 0.5, "quoteList": [quote(7)]},
                {"moduleType": "chatNode", "runningTime": 0.25},
            ]},
        ],
    )
    ai = records(api, appId=app.pk, chatId="x").json()["data"]["list"][0]
    assert ai["totalQuoteList"] == [quote(7)]
    assert ai["totalRunningTime"] == 1.75
    assert ai["llmModuleAccount"] == 2


# --- getPaginationRecords: offset paging from the newest end --------------------------------


def test_offset_zero_is_the_newest_page_oldest_first(api, app, long_chat):
    everything = ids_of(long_chat)
    response = records(api, appId=app.pk, chatId="long", pageSize=10)
    assert data_ids(response) == everything[-10:]
    assert response.json()["data"]["total"] == 50
    assert set(response.json()["data"]) == {"list", "total"}


def test_offset_counts_back_from_the_newest(api, app, long_chat):
    everything = ids_of(long_chat)
    assert data_ids(records(api, appId=app.pk, chatId="long", offset=10, pageSize=10)) == everything[-20:-10]
    assert data_ids(records(api, appId=app.pk, chatId="long", offset=45, pageSize=10)) == everything[:5]
    assert data_ids(records(api, appId=app.pk, chatId="long", offset=50, pageSize=10)) == []
    pages = [data_ids(records(api, appId=app.pk, chatId="long", offset=o, pageSize=20)) for o in (40, 20, 0)]
    assert sum(pages, []) == everything


def test_records_of_a_chat_without_records(api, app, make_chat):
    make_chat(app, chat_id="empty")
    assert records(api, appId=app.pk, chatId="empty").json()["data"] == {"list": [], "total": 0}


@pytest.mark.parametrize(
    "body,field",
    [
        ({"chatId": "c1"}, "appId"),
        ({"appId": "APP"}, "chatId"),
        ({"appId": "APP", "chatId": ["c1"]}, "chatId"),
        ({"appId": "APP", "chatId": "c1", "offset": -1}, "offset"),
        ({"appId": "APP", "chatId": "c1", "offset": "x"}, "offset"),
        ({"appId": "APP", "chatId": "c1", "pageSize": 0}, "pageSize"),
        ({"appId": "APP", "chatId": "c1", "pageSize": 101}, "pageSize"),
        ({"appId": "APP", "chatId": "c1", "pageSize": 2.5}, "pageSize"),
        ({"appId": "APP", "chatId": "c1", "prevId": "a", "nextId": "b"}, "initialId"),
        ({"appId": "APP", "chatId": "c1", "prevId": "a", "offset": 5}, "offset"),
        ({"appId": "APP", "chatId": "c1", "nextId": {"a": 1}}, "nextId"),
    ],
)
def test_records_reject_bad_input(api, app, chat, body, field):
    body = {k: (app.pk if v == "APP" else v) for k, v in body.items()}
    response = records(api, **body)
    assert response.status_code == 400
    assert field in response.json()["message"]


def test_records_of_an_unknown_chat_are_404(api, app):
    response = records(api, appId=app.pk, chatId="nope")
    assert response.status_code == 404
    assert response.json()["statusText"] == "unAuthChat"


# --- cursor paging --------------------------------------------------------------------------


@pytest.mark.parametrize("path", [RECORDS_V2, "/api/core/chat/getRecords_v2"])
def test_v2_without_a_cursor_is_the_newest_page(api, app, long_chat, path):
    everything = ids_of(long_chat)
    data = records(api, path, appId=app.pk, chatId="long", pageSize=10).json()["data"]
    assert [item["dataId"] for item in data["list"]] == everything[-10:]
    assert [item["id"] for item in data["list"]] == everything[-10:]
    assert (data["total"], data["hasMorePrev"], data["hasMoreNext"]) == (50, True, False)


def test_prev_id_walks_back_to_the_start(api, app, long_chat):
    everything = ids_of(long_chat)
    collected, cursor, has_more = [], None, True
    while has_more:
        body = {"appId": app.pk, "chatId": "long", "pageSize": 15, **({"prevId": cursor} if cursor else {})}
        data = records(api, RECORDS_V2, **body).json()["data"]
        page = [item["dataId"] for item in data["list"]]
        collected = page + collected
        cursor, has_more = page[0], data["hasMorePrev"]
        if len(collected) > 15:
            assert data["hasMoreNext"] is True
    assert collected == everything


def test_next_id_walks_forward_to_the_end(api, app, long_chat):
    everything = ids_of(long_chat)
    data = records(api, RECORDS_V2, appId=app.pk, chatId="long", pageSize=20, nextId=everything[9]).json()["data"]
    assert [item["dataId"] for item in data["list"]] == everything[10:30]
    assert (data["hasMorePrev"], data["hasMoreNext"]) == (True, True)
    last = records(api, RECORDS_V2, appId=app.pk, chatId="long", pageSize=20, nextId=everything[29]).json()["data"]
    assert [item["dataId"] for item in last["list"]] == everything[30:]
    assert last["hasMoreNext"] is False


def test_initial_id_centres_a_window_on_that_record(api, app, long_chat):
    everything = ids_of(long_chat)
    data = records(api, RECORDS_V2, appId=app.pk, chatId="long", pageSize=10, initialId=everything[20]).json()["data"]
    assert [item["dataId"] for item in data["list"]] == everything[15:25]
    assert (data["hasMorePrev"], data["hasMoreNext"]) == (True, True)
    start = records(api, RECORDS_V2, appId=app.pk, chatId="long", pageSize=10, initialId=everything[1]).json()["data"]
    assert [item["dataId"] for item in start["list"]] == everything[:6]
    assert (start["hasMorePrev"], start["hasMoreNext"]) == (False, True)


def test_cursor_params_also_work_on_get_pagination_records(api, app, long_chat):
    everything = ids_of(long_chat)
    data = records(api, appId=app.pk, chatId="long", pageSize=5, prevId=everything[10]).json()["data"]
    assert [item["dataId"] for item in data["list"]] == everything[5:10]
    assert (data["hasMorePrev"], data["hasMoreNext"], data["total"]) == (True, True, 50)


def test_a_cursor_not_in_the_chat_is_404(api, app, long_chat, chat):
    other_chats_record = ChatItem.objects.filter(chat=chat).first().data_id
    for cursor in ("nextId", "prevId", "initialId"):
        for value in ("nope", other_chats_record):
            response = records(api, RECORDS_V2, appId=app.pk, chatId="long", **{cursor: value})
            assert response.status_code == 404, (cursor, value)


def test_v2_bad_input(api, app, long_chat):
    assert records(api, RECORDS_V2, appId=app.pk).status_code == 400
    assert records(api, RECORDS_V2, appId=app.pk, chatId="long", pageSize=1000).status_code == 400
    assert records(api, RECORDS_V2, appId=app.pk, chatId="long", initialId="a", nextId="b").status_code == 400


# --- getResData -----------------------------------------------------------------------------


def test_res_data_is_the_ai_records_run(api, app, chat):
    ai = ChatItem.objects.filter(chat=chat, obj="AI").order_by("id").first()
    response = api.get(f"{RES_DATA}?appId={app.pk}&chatId=c1&dataId={ai.data_id}")
    assert response.status_code == 200
    assert response.json()["data"] == ai.response_data
    assert response.json()["data"][0]["quoteList"] == [quote(1), quote(2)]


def test_res_data_of_a_question_is_empty(api, app, chat):
    human = ChatItem.objects.filter(chat=chat, obj="Human").first()
    assert api.get(f"{RES_DATA}?appId={app.pk}&chatId=c1&dataId={human.data_id}").json()["data"] == []


def test_res_data_bad_input_and_unknown_ids(api, app, chat, make_chat, add_turn):
    assert "dataId" in api.get(f"{RES_DATA}?appId={app.pk}&chatId=c1").json()["message"]
    assert api.get(f"{RES_DATA}?appId={app.pk}&dataId=x").status_code == 400
    assert api.get(f"{RES_DATA}?appId={app.pk}&chatId=c1&dataId=nope").status_code == 404
    _, elsewhere = add_turn(make_chat(app, chat_id="other"))
    # A record of another chat of the same app is not found through this chat.
    assert api.get(f"{RES_DATA}?appId={app.pk}&chatId=c1&dataId={elsewhere.data_id}").status_code == 404


# --- item/delete ----------------------------------------------------------------------------


def test_item_delete_removes_that_record_only(api, app, chat):
    first, second, *rest = ChatItem.objects.filter(chat=chat).order_by("id")
    response = api.delete(f"{ITEM_DELETE}?appId={app.pk}&chatId=c1&contentId={second.data_id}")
    assert response.status_code == 200
    assert response.json()["data"] is None
    assert ids_of(chat) == [first.data_id] + [item.data_id for item in rest]


def test_item_delete_bad_input_and_unknown_ids(api, app, chat, make_chat, add_turn):
    assert "contentId" in api.delete(f"{ITEM_DELETE}?appId={app.pk}&chatId=c1").json()["message"]
    assert api.delete(f"{ITEM_DELETE}?appId={app.pk}&chatId=c1").status_code == 400
    assert api.delete(f"{ITEM_DELETE}?appId={app.pk}&chatId=c1&contentId=nope").status_code == 404
    _, elsewhere = add_turn(make_chat(app, chat_id="other"))
    assert api.delete(f"{ITEM_DELETE}?appId={app.pk}&chatId=c1&contentId={elsewhere.data_id}").status_code == 404
    assert ChatItem.objects.filter(pk=elsewhere.pk).exists()


# --- feedback -------------------------------------------------------------------------------


@pytest.fixture
def answer(chat) -> ChatItem:
    return ChatItem.objects.filter(chat=chat, obj="AI").order_by("id").first()


def feedback(api, app, answer, **fields):
    body = {"appId": app.pk, "chatId": answer.chat.chat_id, "dataId": answer.data_id, **fields}
    return api.post(FEEDBACK, body, format="json")


def test_good_feedback_is_set_and_shown(api, app, answer):
    response = feedback(api, app, answer, userGoodFeedback="yes")
    assert response.status_code == 200
    assert response.json()["data"] is None
    answer.refresh_from_db()
    assert (answer.user_good_feedback, answer.user_bad_feedback) == ("yes", None)
    shown = records(api, appId=app.pk, chatId="c1").json()["data"]["list"][1]
    assert shown["userGoodFeedback"] == "yes"
    assert "userBadFeedback" not in shown


def test_omitting_a_feedback_clears_it(api, app, answer):
    feedback(api, app, answer, userGoodFeedback="yes")
    feedback(api, app, answer, userBadFeedback="wrong answer")
    answer.refresh_from_db()
    assert (answer.user_good_feedback, answer.user_bad_feedback) == (None, "wrong answer")
    feedback(api, app, answer)
    answer.refresh_from_db()
    assert (answer.user_good_feedback, answer.user_bad_feedback) == (None, None)


def test_null_feedback_also_clears(api, app, answer):
    feedback(api, app, answer, userGoodFeedback="yes")
    feedback(api, app, answer, userGoodFeedback=None)
    answer.refresh_from_db()
    assert answer.user_good_feedback is None


def test_feedback_accepts_the_older_chat_item_id(api, app, answer):
    body = {"appId": app.pk, "chatId": "c1", "chatItemId": answer.data_id, "userBadFeedback": "meh"}
    assert api.post(FEEDBACK, body, format="json").status_code == 200
    answer.refresh_from_db()
    assert answer.user_bad_feedback == "meh"


def test_feedback_on_a_question_is_400(api, app, chat):
    question = ChatItem.objects.filter(chat=chat, obj="Human").first()
    response = feedback(api, app, question, userGoodFeedback="yes")
    assert response.status_code == 400
    assert "dataId" in response.json()["message"]


def test_feedback_data_id_must_belong_to_that_chat(api, app, answer, make_chat, add_turn):
    _, elsewhere = add_turn(make_chat(app, chat_id="other"))
    body = {"appId": app.pk, "chatId": "c1", "dataId": elsewhere.data_id, "userGoodFeedback": "yes"}
    assert api.post(FEEDBACK, body, format="json").status_code == 404
    elsewhere.refresh_from_db()
    assert elsewhere.user_good_feedback is None


@pytest.mark.parametrize(
    "body,field",
    [
        ({"chatId": "c1", "dataId": "d"}, "appId"),
        ({"appId": "APP", "dataId": "d"}, "chatId"),
        ({"appId": "APP", "chatId": "c1"}, "dataId"),
        ({"appId": "APP", "chatId": "c1", "dataId": "d", "userGoodFeedback": ["yes"]}, "userGoodFeedback"),
        ({"appId": "APP", "chatId": "c1", "dataId": "d", "userBadFeedback": {"a": 1}}, "userBadFeedback"),
        ({"appId": "APP", "chatId": "c1", "dataId": "d", "userBadFeedback": "x" * 5001}, "userBadFeedback"),
    ],
)
def test_feedback_bad_input(api, app, chat, body, field):
    body = {k: (app.pk if v == "APP" else v) for k, v in body.items()}
    response = api.post(FEEDBACK, body, format="json")
    assert response.status_code == 400
    assert field in response.json()["message"]


def test_feedback_with_both_data_id_and_its_old_name_is_refused(api, app, answer):
    """Both `dataId` and `chatItemId` sent: a 500 (unexpected keyword) before; now a 400
    naming the two, and nothing written."""
    response = feedback(api, app, answer, chatItemId="some-other-id", userBadFeedback="no")
    assert response.status_code == 400, response.content
    assert "dataId" in response.json()["message"] and "chatItemId" in response.json()["message"]
    answer.refresh_from_db()
    assert answer.user_bad_feedback is None


def test_records_refuse_an_offset_past_any_page(api, app, chat):
    response = records(api, appId=app.pk, chatId="c1", offset=2**63)
    assert response.status_code == 400
    assert "offset" in response.json()["message"]
