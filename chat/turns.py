"""One chat turn's database work, in two short sync steps around the model call.

`prepare_turn` authenticates, validates and loads the history; `save_turn` writes the question
and the answer in one transaction. Between them the model call holds no database connection
and no transaction, however long it takes.
"""

import logging
import secrets
from dataclasses import dataclass, field
from datetime import timedelta

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from chat import prompting
from chat.completion_serializers import ChatCompletionIn
from chat.models import App, Chat, ChatItem, ChatRole, ChatSource
from chat.selectors import app_for_key, app_model, recent_records
from providers.registry import AiModel
from config.errors import BadRequest, KeyOutOfScope, MissingCredential, RateLimited
from config.ids import new_object_id
from config.validation import validated
from keys.authentication import KeyAuth, authenticate_header_value
from keys.services import add_usage
from keys.throttling import seconds_until_allowed

logger = logging.getLogger(__name__)

TITLE_CHARS = 20
_DATA_ID_ALPHABET = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def new_data_id() -> str:
    """A record id like FastGPT's nanoid (22 characters)."""
    return "".join(secrets.choice(_DATA_ID_ALPHABET) for _ in range(22))


def release_connection() -> None:
    """Give the connection back to PostgreSQL's pool once a step is done, so a long stream
    holds none. SQLite keeps it (closed at the request's end as usual): it has no pool to
    starve, and closing its last connection checkpoints the WAL every time. Never inside a
    transaction (tests wrap everything in one)."""
    if connection.vendor != "sqlite" and not connection.in_atomic_block:
        connection.close()


@dataclass
class Turn:
    """What the model call and `save_turn` need, all read in `prepare_turn`."""

    auth: KeyAuth
    app: App
    model: AiModel
    chat_id: str
    question: list[dict]  # stored value parts
    question_text: str
    provider_messages: list[dict]
    request_variables: dict
    variables: dict  # stored ones with the request's merged over
    custom_uid: str
    metadata: dict
    human_data_id: str
    ai_data_id: str
    new_chat: bool  # no chatId was sent: the chat id is ours and the chat cannot exist yet
    ids_from_client: bool  # the client named a record id, which another request may also use
    stream: bool
    detail: bool
    include_usage: bool
    started: float = field(default=0.0)


def authenticate(header: str) -> KeyAuth:
    auth = authenticate_header_value(header)
    if auth is None:
        raise MissingCredential()
    wait = seconds_until_allowed(key_id=auth.key.pk)
    if wait is not None:
        raise RateLimited(wait)
    return auth


def app_for_completion(*, auth: KeyAuth, app_id: str | None) -> App:
    """The app to answer with: an app key's own app always wins (as in FastGPT); a global key
    must name an app of its team (in the body, or in the legacy `fastgpt-<key>-<appId>` form)."""
    wanted = auth.key.app_id or app_id or auth.legacy_app_id
    if not wanted:
        raise KeyOutOfScope(
            "Chat needs an app: use the app's API key, or send `appId` of an app of your team "
            "with a global key."
        )
    return app_for_key(auth=auth, app_id=wanted)


def prepare_turn(*, header: str, body, client_ip: str) -> Turn:
    """Authenticate, validate the request and load what the model needs. Raises ApiError."""
    try:
        auth = authenticate(header)
        data = validated(ChatCompletionIn, body)
        app = app_for_completion(auth=auth, app_id=data.get("appId"))
        model = app_model(app)
        chat_id = data.get("chatId") or ""
        messages = data["messages"]
        question = messages[-1]

        stored_chat = Chat.objects.filter(app=app, chat_id=chat_id).first() if chat_id else None
        ai_data_id = data.get("responseChatItemId") or new_data_id()
        if stored_chat and stored_chat.items.filter(data_id=ai_data_id).exists():
            raise BadRequest("responseChatItemId: this id is already used in this chat.")
        variables = {**(stored_chat.variables if stored_chat else {}), **data["variables"]}

        if chat_id:
            # With a chatId the history is the server's; only the last message is new.
            recent = recent_records(chat=stored_chat, rounds=app.history_turns) if stored_chat else []
            history = prompting.history_messages(recent)
            conversation = history + prompting.request_messages([question])
        else:
            conversation = prompting.request_messages(messages)
        return Turn(
            auth=auth,
            app=app,
            model=model,
            chat_id=chat_id or new_object_id(),
            question=prompting.to_value(question["content"]),
            question_text=prompting.text_of(question["content"]),
            provider_messages=prompting.with_system_prompt(app.system_prompt, variables, conversation),
            request_variables=data["variables"],
            variables=variables,
            custom_uid=data.get("customUid") or "",
            metadata={**data["metadata"], "originIp": client_ip},
            human_data_id=question.get("dataId") or new_data_id(),
            ai_data_id=ai_data_id,
            new_chat=not chat_id,
            ids_from_client=bool(question.get("dataId") or data.get("responseChatItemId")),
            stream=data["stream"],
            detail=data["detail"],
            include_usage=bool((data.get("stream_options") or {}).get("include_usage")),
        )
    finally:
        release_connection()


def save_turn(
    *,
    turn: Turn,
    answer: str,
    response_data: list[dict],
    usage_points: int,
    duration: float,
    error: str = "",
    interrupted: bool = False,
) -> None:
    """Write the question and the answer (or the error) in one transaction, then count the
    tokens against the key (outside it: every turn of a key updates that key's row, and holding
    the row lock until commit would serialise all of the key's turns)."""
    now = timezone.now()
    asked_at = now - timedelta(seconds=max(duration, 0))  # the question's time, not the answer's
    try:
        with transaction.atomic():
            chat = Chat.objects.create(**_new_chat_fields(turn, now)) if turn.new_chat else _upsert_chat(turn, now)
            items = [
                ChatItem(chat=chat, data_id=turn.human_data_id, obj=ChatRole.HUMAN, value=turn.question, time=asked_at),
                ChatItem(
                    chat=chat,
                    data_id=turn.ai_data_id,
                    obj=ChatRole.AI,
                    value=[{"type": "text", "text": {"content": answer}}] if answer else [],
                    response_data=response_data,
                    error_msg=error,
                    interrupted=interrupted,
                    duration_seconds=round(duration, 3),
                    time=now,
                ),
            ]
            _insert_items(turn, items)
        add_usage(key=turn.auth.key, points=usage_points)
    finally:
        release_connection()


def _insert_items(turn: Turn, items: list[ChatItem]) -> None:
    if not turn.ids_from_client:  # our ids are random: they cannot clash
        ChatItem.objects.bulk_create(items)
        return
    try:
        with transaction.atomic():
            ChatItem.objects.bulk_create(items)
    except IntegrityError:
        # A concurrent request on this chat took one of the client's ids: keep both turns.
        logger.warning("Record id taken in chat %s; storing under fresh ids.", turn.chat_id)
        for item in items:
            item.data_id = new_data_id()
        ChatItem.objects.bulk_create(items)


def _new_chat_fields(turn: Turn, now) -> dict:
    return {
        "team_id": turn.auth.team_id,
        "app": turn.app,
        "chat_id": turn.chat_id,
        "title": turn.question_text[:TITLE_CHARS] or "New chat",
        "source": ChatSource.API,
        "source_name": turn.auth.key.name,
        "api_key_id": turn.auth.key.pk,
        "custom_uid": turn.custom_uid,
        "variables": turn.variables,
        "metadata": turn.metadata,
        "created_at": now,
        "updated_at": now,
    }


def _upsert_chat(turn: Turn, now) -> Chat:
    """The chat named by the client, locked for this transaction; created on its first turn."""
    chat = Chat.objects.select_for_update().filter(app=turn.app, chat_id=turn.chat_id).first()
    if chat is None:
        try:
            with transaction.atomic():  # a concurrent first turn may create it first
                return Chat.objects.create(**_new_chat_fields(turn, now))
        except IntegrityError:
            chat = Chat.objects.select_for_update().get(app=turn.app, chat_id=turn.chat_id)
    # Merge over what is stored now, not what prepare_turn read: a concurrent turn may have
    # changed it in between.
    chat.variables = {**chat.variables, **turn.request_variables}
    chat.metadata = {**chat.metadata, **turn.metadata}
    chat.custom_uid = turn.custom_uid or chat.custom_uid
    chat.updated_at = now
    chat.save(update_fields=["variables", "metadata", "custom_uid", "updated_at"])
    return chat
