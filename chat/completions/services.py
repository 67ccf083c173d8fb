"""One chat turn's database work, in two short sync steps around the model call.

`prepare_turn` validates the request (the key is already checked and counted, see
keys/access.py) and loads the history; `save_turn` writes the question and the answer in one
transaction. Between them the model call holds no database connection and no transaction,
however long it takes.
"""

import logging
import time
from datetime import timedelta
from dataclasses import dataclass, field

from asgiref.sync import sync_to_async
from django.db import IntegrityError, connection, transaction
from django.utils import timezone
from django.utils.crypto import get_random_string

from chat.app_model import app_model
from chat.completions import prompting
from chat.completions.grounding import Grounding, SearchFailed, grounding_for, run_search, with_quotes
from chat.completions.serializers import ChatCompletionIn
from chat.history.selectors import recent_records, record_exists
from chat.models import App, Chat, ChatItem, ChatRole, ChatSource
from chat.run_records import CHAT_NODE, chat_node
from chat.selectors import app_for_key, find_chat
from chat.value_parts import text_of, to_value
from config.errors import ApiError, BadRequest, KeyOutOfScope, UpstreamError
from config.ids import new_object_id
from config.validation import validated
from keys.authentication import KeyAuth
from keys.services import add_usage, reserve_usage
from providers.chat_models import Usage
from providers.registry import AiModel
from providers.token_count import estimate_messages

logger = logging.getLogger(__name__)

TITLE_CHARS = 20
DATA_ID_LENGTH = 22
INTERRUPTED = "The client disconnected before the answer was complete."


def new_data_id() -> str:
    """A record id like FastGPT's nanoid (22 letters and digits)."""
    return get_random_string(DATA_ID_LENGTH)


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
    model_error: ApiError | None = None  # the app names a model that is not declared
    reserved: int = 0  # usage points reserved against the key's cap before the call
    started: float = field(default_factory=time.monotonic)
    # Set by `ground_turn` for an app with linked datasets (chat/completions/grounding.py).
    quotes: list[dict] | None = None  # None: not grounded; []: searched, nothing found
    search_node: dict | None = None
    search_points: int = 0  # tokens the search spent, billed with the turn
    search_seconds: float = 0.0

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    def model_call(self) -> dict:
        """The arguments of the model call: the context built for this turn, the app's settings."""
        call = {
            "model": self.model, "messages": self.provider_messages,
            "temperature": self.app.temperature, "max_tokens": self.app.max_tokens,
        }
        if self.quotes is not None:  # the offline responder answers from them (plain data)
            call["quotes"] = self.quotes
        return call

    def node_names(self) -> list[str]:
        """The run's nodes in order, as `flowNodeStatus` announces them."""
        return ([self.search_node["moduleName"]] if self.search_node else []) + [CHAT_NODE]

    def response_records(self, answer: str, usage: Usage | None, *, error: str = "") -> list[dict]:
        """FastGPT's node responses for this run (`responseData` / `flowResponses`): the
        dataset search (grounded apps), then the chat node."""
        return ([self.search_node] if self.search_node else []) + [
            chat_node(
                node_id=new_object_id(), model_name=self.model.name, question=self.question_text,
                max_tokens=self.app.max_tokens, temperature=self.app.temperature,
                messages=self.provider_messages, answer=answer,
                running_time=self.elapsed() - self.search_seconds, usage=usage, error=error,
            )
        ]


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


def prepare_turn(*, auth: KeyAuth, body, client_ip: str) -> Turn:
    """Validate the request and load what the model needs. Raises ApiError."""
    data = validated(ChatCompletionIn, body)
    app = app_for_completion(auth=auth, app_id=data.get("appId"))
    try:
        model, model_error = app_model(app), None
    except UpstreamError as exc:
        # Misconfigured, not the client's fault: the turn is still stored, as a failure.
        model, model_error = AiModel(name=app.model, type="llm"), exc
    chat_id = data.get("chatId") or ""
    messages = data["messages"]
    question = messages[-1]

    stored_chat = find_chat(app=app, chat_id=chat_id)
    ai_data_id = data.get("responseChatItemId") or new_data_id()
    if stored_chat and record_exists(chat=stored_chat, data_id=ai_data_id):
        raise BadRequest("responseChatItemId: this id is already used in this chat.")
    variables = {**(stored_chat.variables if stored_chat else {}), **data["variables"]}

    if chat_id:
        # With a chatId the history is the server's; only the last message is new.
        recent = recent_records(chat=stored_chat, rounds=app.history_turns) if stored_chat else []
        history = prompting.history_messages(recent)
        conversation = history + prompting.request_messages([question])
    else:
        conversation = prompting.request_messages(messages)
    turn = Turn(
        auth=auth,
        app=app,
        model=model,
        chat_id=chat_id or new_object_id(),
        question=to_value(question["content"]),
        question_text=text_of(question["content"]),
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
        model_error=model_error,
    )
    if model_error is None:
        # What the question costs is known before the call; the answer is settled after it.
        turn.reserved = reserve_usage(key=auth.key, points=estimate_messages(turn.provider_messages))
        # One query for an app with no dataset (issue 11's single read will fold it in).
        grounding = grounding_for(app)
        if grounding is not None:
            ground_turn(turn, grounding)
    return turn


def ground_turn(turn: Turn, grounding: Grounding) -> None:
    """Search the app's datasets and put the quotes into the question. A failed search is
    stored as the turn's failure (question + AI record with the error) and raised."""
    try:
        found = run_search(team_id=turn.auth.team_id, grounding=grounding, question=turn.question_text)
    except SearchFailed as failed:
        save_turn(
            turn=turn, answer="", response_data=[failed.node], usage_points=0,
            duration=turn.elapsed(), error=str(failed.error.detail),
        )
        raise failed.error from failed
    turn.quotes, turn.search_node = found.quotes, found.node
    turn.search_points, turn.search_seconds = found.tokens, found.seconds
    turn.provider_messages = with_quotes(turn.provider_messages, found.quotes, grounding)


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
        add_usage(key=turn.auth.key, points=usage_points + turn.search_points, reserved=turn.reserved)
    finally:
        release_connection()


async def save_answer(turn: Turn, *, answer: str, usage: Usage) -> list[dict]:
    """Store a complete answer; returns the run's node records (sent with `detail`)."""
    records = turn.response_records(answer, usage)
    await sync_to_async(save_turn)(
        turn=turn, answer=answer, response_data=records,
        usage_points=usage.total_tokens, duration=turn.elapsed(),
    )
    return records


async def record_failure(
    turn: Turn, *, answer: str, usage: Usage | None, error: str, interrupted=False, detached=False
) -> None:
    """Store the question and an AI record carrying the error (and any partial answer).

    `detached`: saving from a task that outlives the request, whose own thread is gone by
    then; the save runs on the loop's shared executor instead.
    """
    records = turn.response_records(answer, usage, error=error)
    await sync_to_async(save_turn, thread_sensitive=not detached)(
        turn=turn, answer=answer, response_data=records,
        usage_points=usage.total_tokens if usage else 0, duration=turn.elapsed(),
        error=error, interrupted=interrupted,
    )


def _insert_items(turn: Turn, items: list[ChatItem]) -> None:
    """Insert the two records. A record id the client named may have been taken by a
    concurrent turn since `prepare_turn` checked it: this turn is then stored under a fresh
    id, and the turn carries the ids actually stored (the answer reports those)."""
    if not turn.ids_from_client:  # our ids are random: they cannot clash
        ChatItem.objects.bulk_create(items)
        return
    try:
        with transaction.atomic():
            ChatItem.objects.bulk_create(items)
    except IntegrityError:
        taken = set(
            ChatItem.objects.filter(chat=items[0].chat, data_id__in=[i.data_id for i in items])
            .values_list("data_id", flat=True)
        )
        logger.warning("Record id taken in chat %s; storing under fresh ids.", turn.chat_id)
        for item in items:
            if item.data_id in taken or not taken:
                item.data_id = new_data_id()
        ChatItem.objects.bulk_create(items)
    turn.human_data_id, turn.ai_data_id = items[0].data_id, items[1].data_id


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
