"""The conversation admin: a list that stays cheap (bounded queries, no full count), filters
and search, a read-only transcript, deletion, and the JSON Lines export."""

import json
from datetime import timedelta

import pytest
from django.contrib.auth.models import User
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from chat import admin as chat_admin
from chat.models import App, Chat, ChatItem

from .conftest import quote

LIST = "/admin/chat/chat/"


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def page(admin_client, url=LIST, **params) -> str:
    response = admin_client.get(url, params)
    assert response.status_code == 200
    return response.content.decode()


def listed_chat_ids(admin_client, **params) -> set[str]:
    """The chats on the list page, by chat id (read from the rows' change links)."""
    response = admin_client.get(LIST, params)
    return {chat.chat_id for chat in response.context["cl"].result_list}


@pytest.fixture
def many_chats(app, second_app, make_chat, add_turn):
    """40 conversations over two apps, each with one turn."""
    chats = []
    for n in range(40):
        conversation = make_chat(app if n % 2 else second_app, chat_id=f"bulk-{n}")
        add_turn(conversation)
        chats.append(conversation)
    return chats


# --- list -----------------------------------------------------------------------------------


def test_list_shows_team_app_title_uid_source_key_and_message_count(admin_client, app, chat):
    html = page(admin_client)
    # The row's own cells (words like "app" or "API" are on every admin page).
    for cell in (
        f'<a href="{chat.pk}/change/">{chat.title}</a>', '<td class="field-team">acme</td>',
        '<td class="field-app">Support bot</td>', '<td class="field-custom_uid">user-1</td>',
        '<td class="field-source">api</td>', '<td class="field-source_name">app</td>',
        '<td class="field-messages">4</td>',
    ):
        assert cell in html, cell


def test_list_counts_zero_messages_for_an_empty_chat(admin_client, app, make_chat):
    make_chat(app, chat_id="empty")
    assert admin_client.get(LIST).context["cl"].result_list[0].message_count == 0


def test_list_queries_do_not_grow_with_the_rows(admin_client, app, make_chat, add_turn, django_assert_max_num_queries):
    add_turn(make_chat(app))
    with CaptureQueriesContext(connection) as few:
        page(admin_client)
    for _ in range(40):
        add_turn(make_chat(app))
    with CaptureQueriesContext(connection) as many:
        page(admin_client)
    assert len(many) == len(few)
    with django_assert_max_num_queries(10):
        page(admin_client)


def test_list_never_counts_the_whole_table(admin_client, many_chats):
    with CaptureQueriesContext(connection) as queries:
        page(admin_client)
        page(admin_client, source="api")
    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper() and "chat_chat" in q["sql"]]
    table_counts = [sql for sql in counts if sql.upper().startswith("SELECT COUNT(")]
    assert table_counts, "the page shows a count"
    for sql in table_counts:
        assert "LIMIT" in sql.upper()  # capped, never the whole table
        assert "chat_chatitem" not in sql  # and the rows counted skip the message count


def test_counts_above_the_cap_are_capped(admin_client, many_chats, monkeypatch):
    monkeypatch.setattr(chat_admin, "COUNT_CAP", 25)
    monkeypatch.setattr(chat_admin.ChatAdmin, "list_per_page", 10)
    cl = admin_client.get(LIST, {"source": "api"}).context["cl"]
    assert cl.result_count == 26  # "more than the cap": pages stop there
    assert len(cl.result_list) == 10


def test_filters_team_app_source_and_updated(admin_client, app, second_app, other_app, make_chat):
    now = timezone.now()
    make_chat(app, chat_id="mine", source="api", updated_at=now)
    make_chat(second_app, chat_id="second", source="online", updated_at=now - timedelta(days=3))
    make_chat(other_app, chat_id="theirs", source="api", updated_at=now - timedelta(days=60))
    assert listed_chat_ids(admin_client, team__id__exact=app.team_id) == {"mine", "second"}
    assert listed_chat_ids(admin_client, app__id__exact=second_app.pk) == {"second"}
    assert listed_chat_ids(admin_client, source__exact="api") == {"mine", "theirs"}
    assert listed_chat_ids(admin_client, updated="1d") == {"mine"}
    assert listed_chat_ids(admin_client, updated="7d") == {"mine", "second"}
    assert listed_chat_ids(admin_client, updated="older") == {"theirs"}
    html = page(admin_client)
    for label in ("today", "past 7 days", "past 30 days", "more than 30 days ago"):
        assert label in html


def test_search_by_exact_chat_id_custom_uid_or_title_words(admin_client, app, make_chat):
    make_chat(app, chat_id="abc-123", title="Refund policy", custom_uid="u-9")
    make_chat(app, chat_id="abc-1234", title="Shipping times", custom_uid="u-10")
    make_chat(app, chat_id="zzz", title="Other", custom_title="Renamed refund thread")
    assert listed_chat_ids(admin_client, q="abc-123") == {"abc-123"}  # exact, not a prefix
    assert listed_chat_ids(admin_client, q="u-10") == {"abc-1234"}
    assert listed_chat_ids(admin_client, q="refund") == {"abc-123", "zzz"}
    assert listed_chat_ids(admin_client, q="nothing like it") == set()


@pytest.mark.parametrize("sort", [None, "1", "2.3", "-4", "6"])
def test_list_is_newest_first_whatever_column_is_asked_to_sort(admin_client, app, make_chat, sort):
    """Only `updated` sorts (an index serves it); asking for another column changes nothing."""
    now = timezone.now()
    make_chat(app, chat_id="old", title="A", custom_uid="a", updated_at=now - timedelta(days=1))
    make_chat(app, chat_id="new", title="B", custom_uid="b", updated_at=now)
    rows = admin_client.get(LIST, {"o": sort} if sort else {}).context["cl"].result_list
    assert [row.chat_id for row in rows] == ["new", "old"]


# --- transcript -----------------------------------------------------------------------------


@pytest.fixture
def rich_chat(app, make_chat, add_turn):
    conversation = make_chat(app, chat_id="rich", custom_uid="ann", variables={"city": "Oslo"})
    add_turn(conversation, "What is the refund window?", "Thirty days.", quotes=[quote(1, source="policy.pdf")], good="helpful")
    add_turn(conversation, "And for sale items?", "", error="Provider timed out", bad="no answer", images=["https://img.example/receipt.png"])
    add_turn(conversation, "Still there?", "Partly", interrupted=True)
    return conversation


def test_transcript_shows_each_turn_feedback_errors_and_quotes(admin_client, rich_chat):
    html = page(admin_client, f"{LIST}{rich_chat.pk}/change/")
    for text in (
        "What is the refund window?", "Thirty days.", "👍 Liked: helpful", "👎 Disliked: no answer",
        "Error: Provider timed out", "Interrupted", "Quoted knowledge (1)", "policy.pdf",
        "quoted question 1", "quoted answer 1", "AI Chat", "gpt-test", "120 tokens",
        "https://img.example/receipt.png", "ann", "Oslo",
    ):
        assert text in html, text
    assert html.index("What is the refund window?") < html.index("Thirty days.") < html.index("And for sale items?")
    # A transcript, not a dump of the stored JSON.
    assert '"type": "text"' not in html and "&quot;type&quot;" not in html
    crumbs = html.split('<div class="breadcrumbs">', 1)[1].split("</div>", 1)[0]  # back to the list, named
    assert f'href="{LIST}"' in crumbs and str(rich_chat) in crumbs
    # Read-only: nothing to save.
    assert 'name="_save"' not in html


def test_transcript_queries_are_bounded(admin_client, rich_chat, add_turn, django_assert_max_num_queries):
    for _ in range(30):
        add_turn(rich_chat, quotes=[quote(2)])
    with django_assert_max_num_queries(6):
        page(admin_client, f"{LIST}{rich_chat.pk}/change/")


def test_transcript_escapes_stored_text_and_links_only_web_urls(admin_client, app, make_chat, add_turn):
    conversation = make_chat(app, chat_id="xss")
    add_turn(conversation, "<script>alert(1)</script>", "<b>bold</b>", images=["javascript:alert(2)"])
    html = page(admin_client, f"{LIST}{conversation.pk}/change/")
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
    assert "<b>bold</b>" not in html
    assert 'href="javascript:' not in html


def test_a_long_transcript_is_paged(admin_client, app, make_chat, add_turn, monkeypatch):
    monkeypatch.setattr(chat_admin, "TRANSCRIPT_PAGE_SIZE", 4)
    conversation = make_chat(app, chat_id="long")
    for n in range(5):
        add_turn(conversation, f"question {n}", f"answer {n}")
    first = page(admin_client, f"{LIST}{conversation.pk}/change/")
    assert "question 0" in first and "question 2" not in first and "page 1 of 3" in first
    last = page(admin_client, f"{LIST}{conversation.pk}/change/", page=3)
    assert "question 4" in last and "question 0" not in last
    assert "page 3 of 3" in page(admin_client, f"{LIST}{conversation.pk}/change/", page=99)
    assert "page 1 of 3" in page(admin_client, f"{LIST}{conversation.pk}/change/", page="x")


def test_unknown_chat_is_404(admin_client, db):
    assert admin_client.get(f"{LIST}999999/change/").status_code == 404


def test_chats_cannot_be_added_or_edited_by_hand(admin_client, chat):
    assert admin_client.get(f"{LIST}add/").status_code == 403
    before = (chat.title, chat.custom_uid)
    admin_client.post(f"{LIST}{chat.pk}/change/", {"title": "edited", "custom_uid": "x"})
    chat.refresh_from_db()
    assert (chat.title, chat.custom_uid) == before  # neither field changed
    assert f'href="{LIST}add/"' not in page(admin_client)


def test_staff_without_permission_cannot_see_chats(client, chat):
    staff = User.objects.create_user("staff", password="pw", is_staff=True)
    client.force_login(staff)
    assert client.get(LIST).status_code == 403
    assert client.get(f"{LIST}{chat.pk}/change/").status_code == 403


def test_delete_summarises_and_removes_the_chat_with_its_records(admin_client, chat, add_turn):
    confirm = page(admin_client, f"{LIST}{chat.pk}/delete/")
    assert "Records: 4" in confirm and "Conversation: " in confirm
    response = admin_client.post(f"{LIST}{chat.pk}/delete/", {"post": "yes"})
    assert response.status_code == 302
    assert not Chat.objects.filter(pk=chat.pk).exists()
    assert not ChatItem.objects.filter(chat_id=chat.pk).exists()


def test_delete_selected_action(admin_client, many_chats):
    ids = [chat.pk for chat in many_chats[:3]]
    admin_client.post(LIST, {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert not Chat.objects.filter(pk__in=ids).exists()
    assert Chat.objects.count() == 37


# --- export ---------------------------------------------------------------------------------


def export(admin_client, ids) -> tuple:
    response = admin_client.post(LIST, {"action": "export_jsonl", "_selected_action": ids})
    body = b"".join(response.streaming_content).decode()
    return response, body


def test_export_writes_one_json_line_per_chat_with_its_records(admin_client, rich_chat, chat):
    response, body = export(admin_client, [rich_chat.pk, chat.pk])
    assert response.status_code == 200
    assert response["Content-Type"].startswith("application/jsonl")
    assert 'attachment; filename="conversations-' in response["Content-Disposition"]
    lines = [json.loads(line) for line in body.splitlines()]
    assert sorted(line["chatId"] for line in lines) == ["c1", "rich"]
    exported = next(line for line in lines if line["chatId"] == "rich")
    assert exported["appId"] == rich_chat.app_id
    assert (exported["appName"], exported["teamName"]) == ("Support bot", "acme")
    assert (exported["customUid"], exported["source"], exported["variables"]) == ("ann", "api", {"city": "Oslo"})
    stored = list(ChatItem.objects.filter(chat=rich_chat).order_by("id"))
    assert [item["dataId"] for item in exported["items"]] == [item.data_id for item in stored]
    first_answer = exported["items"][1]
    assert first_answer["obj"] == "AI"
    assert first_answer["value"] == [{"type": "text", "text": {"content": "Thirty days."}}]
    assert first_answer["userGoodFeedback"] == "helpful"
    assert first_answer["responseData"][0]["quoteList"][0]["sourceName"] == "policy.pdf"
    assert exported["items"][3]["errorMsg"] == "Provider timed out"


def test_export_queries_do_not_grow_with_the_chats(admin_client, many_chats, django_assert_max_num_queries):
    with django_assert_max_num_queries(10):
        _, body = export(admin_client, [chat.pk for chat in many_chats])
    assert len(body.splitlines()) == 40


def test_export_of_unicode_keeps_it_readable(admin_client, app, make_chat, add_turn):
    conversation = make_chat(app, chat_id="zh")
    add_turn(conversation, "你好", "您好！")
    _, body = export(admin_client, [conversation.pk])
    assert "你好" in body


def test_app_admin_still_lists_apps(admin_client, app):
    assert "Support bot" in page(admin_client, "/admin/chat/app/")
    assert App.objects.count() == 1
