"""Reads of an app's conversations and their records (the chat-history endpoints; completions
read a chat's recent records from here too). Every function takes an app or chat already
found through chat.selectors with the caller's key."""

from dataclasses import dataclass
from datetime import datetime

from django.db.models import QuerySet

from chat.app_model import shown_model_name
from chat.models import App, Chat, ChatItem
from chat.selectors import app_for_key, find_chat
from config.errors import ChatNotFound
from keys.authentication import KeyAuth

# The columns a history list shows: loading `variables`/`metadata` (JSON) for 20 rows we
# never show would only cost time.
HISTORY_COLUMNS = ("chat_id", "app_id", "updated_at", "title", "custom_title", "top", "custom_uid", "source")


@dataclass(frozen=True)
class ChatInit:
    """What a client needs to open a conversation window (`GET /core/chat/init`)."""

    app: App
    chat_id: str
    chat: Chat | None  # None: a conversation about to start
    model_name: str


def chat_init(*, auth: KeyAuth, app_id: str, chat_id: str) -> ChatInit:
    """The app's chat config and, if ``chat_id`` exists, that conversation's title and
    variables. A chatId the app has never seen is not an error: it is a new conversation."""
    app = app_for_key(auth=auth, app_id=app_id)
    chat = find_chat(app=app, chat_id=chat_id)
    # Shown as configured: opening a window must not fail on a model that isn't.
    return ChatInit(app=app, chat_id=chat_id, chat=chat, model_name=shown_model_name(app))


# --- histories ------------------------------------------------------------------------------


@dataclass(frozen=True)
class HistoryFilters:
    """Optional narrowing of a history list. None means "no filter" for every field."""

    source: str | None = None
    custom_uid: str | None = None  # "" lists the chats that have no customUid
    updated_from: datetime | None = None
    updated_to: datetime | None = None
    created_from: datetime | None = None
    created_to: datetime | None = None


def histories(*, app: App, filters: HistoryFilters = HistoryFilters()) -> QuerySet[Chat]:
    """The app's conversations, pinned first, then the most recently updated.

    Served by the indexes (app, -top, -updated_at) and, for one end user, (app, custom_uid,
    -updated_at) (a user has few chats: they are sorted after the index finds them).
    """
    chats = Chat.objects.filter(app=app)
    if filters.source is not None:
        chats = chats.filter(source=filters.source)
    if filters.custom_uid is not None:
        chats = chats.filter(custom_uid=filters.custom_uid)
    if filters.updated_from is not None:
        chats = chats.filter(updated_at__gte=filters.updated_from)
    if filters.updated_to is not None:
        chats = chats.filter(updated_at__lte=filters.updated_to)
    if filters.created_from is not None:
        chats = chats.filter(created_at__gte=filters.created_from)
    if filters.created_to is not None:
        chats = chats.filter(created_at__lte=filters.created_to)
    # `-id` last makes the order total, so offset pages never repeat or skip a chat whose
    # updated_at equals its neighbour's.
    return chats.order_by("-top", "-updated_at", "-id")


def history_page(
    *, app: App, filters: HistoryFilters, offset: int, page_size: int
) -> tuple[list[Chat], int]:
    """One page of ``histories`` and the total matching (an exact, index-served count)."""
    chats = histories(app=app, filters=filters)
    page = list(chats.only(*HISTORY_COLUMNS)[offset : offset + page_size])
    return page, chats.count()


# --- records --------------------------------------------------------------------------------


def record_in_chat(*, chat: Chat, data_id: str) -> ChatItem:
    """The record ``data_id`` of ``chat`` (a record of another chat is not found)."""
    item = ChatItem.objects.filter(chat=chat, data_id=data_id).first()
    if item is None:
        raise ChatNotFound("No record with this dataId in this chat.")
    return item


def record_page(*, chat: Chat, offset: int, page_size: int) -> tuple[list[ChatItem], int]:
    """FastGPT's offset paging of records: ``offset`` counts back from the NEWEST record.

    offset 0 is the latest ``page_size`` records; each page is returned oldest first, so a
    client scrolling up asks for offset += page_size and prepends the page.
    """
    items = ChatItem.objects.filter(chat=chat)
    # Pick the page's ids in an index-only subquery, then read only those rows: a deep
    # offset then skips index entries instead of whole rows with their JSON.
    page_ids = items.order_by("-id").values("id")[offset : offset + page_size]
    page = list(ChatItem.objects.filter(id__in=page_ids).order_by("id"))
    return page, items.count()


@dataclass(frozen=True)
class RecordWindow:
    """A cursor page of records (oldest first) and whether there are more on either side."""

    items: list[ChatItem]
    total: int
    has_more_prev: bool
    has_more_next: bool


def record_window(
    *,
    chat: Chat,
    page_size: int,
    initial_id: str | None = None,
    prev_id: str | None = None,
    next_id: str | None = None,
) -> RecordWindow:
    """Cursor paging (FastGPT's getRecords_v2); the cursors are record dataIds.

    - none: the newest ``page_size`` records;
    - ``prev_id``: the ``page_size`` records just before that record (older);
    - ``next_id``: the ``page_size`` records just after it (newer);
    - ``initial_id``: a window holding that record, half the page before it.
    Each query reads at most page_size + 1 rows by the (chat, id) index, however long the chat.
    """
    items = ChatItem.objects.filter(chat=chat)
    total = items.count()
    if next_id is not None:
        anchor = record_in_chat(chat=chat, data_id=next_id).pk
        after = list(items.filter(id__gt=anchor).order_by("id")[: page_size + 1])
        return RecordWindow(after[:page_size], total, True, len(after) > page_size)
    if prev_id is not None:
        anchor = record_in_chat(chat=chat, data_id=prev_id).pk
        before = list(items.filter(id__lt=anchor).order_by("-id")[: page_size + 1])
        return RecordWindow(before[:page_size][::-1], total, len(before) > page_size, True)
    if initial_id is not None:
        anchor = record_in_chat(chat=chat, data_id=initial_id).pk
        want_before = page_size // 2
        want_after = page_size - want_before  # includes the anchor itself
        before = list(items.filter(id__lt=anchor).order_by("-id")[: want_before + 1])
        after = list(items.filter(id__gte=anchor).order_by("id")[: want_after + 1])
        return RecordWindow(
            before[:want_before][::-1] + after[:want_after],
            total,
            len(before) > want_before,
            len(after) > want_after,
        )
    latest = list(items.order_by("-id")[: page_size + 1])
    return RecordWindow(latest[:page_size][::-1], total, len(latest) > page_size, False)


def record_exists(*, chat: Chat, data_id: str) -> bool:
    """Whether ``chat`` already has a record ``data_id``."""
    return ChatItem.objects.filter(chat=chat, data_id=data_id).exists()


def recent_records(*, chat: Chat, rounds: int) -> list[ChatItem]:
    """The last ``rounds`` question/answer rounds (2 records each), oldest first."""
    return list(ChatItem.objects.filter(chat=chat).order_by("-id")[: rounds * 2])[::-1]
