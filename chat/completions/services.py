"""One chat turn's database work, in two short sync steps around the model call.

`prepare_turn` admits the key (keys/access.py), validates the request and loads the app and
the history in one read; `save_turn` writes the chat, the question, the answer and the usage
in one write (both in chat/completions/turn_store.py). Between them the model call holds no
database connection and no transaction, however long it takes.
"""

import logging
import secrets
import string
import time
from datetime import timedelta
from dataclasses import dataclass, field, replace

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.cache import cache
from django.core.cache.backends.locmem import LocMemCache
from django.db import IntegrityError, connection
from django.utils import timezone

from chat.app_model import app_model
from chat.completions import prompting
from chat.completions.grounding import Grounding, SearchFailed, grounding_for, run_search, with_quotes
from chat.completions.serializers import validated_chat_request
from chat.completions.turn_store import (
    TurnRead,
    TurnWrite,
    on_loop,
    read_turn,
    taken_record_ids,
    taken_record_ids_async,
    write_turn,
    write_turn_async,
)
from chat.models import App, ChatSource
from chat.run_records import CHAT_NODE, chat_node
from chat.value_parts import text_of, to_value
from config.errors import ApiError, AppNotFound, BadRequest, KeyOutOfScope, UpstreamError
from config.ids import new_object_id
from keys.access import admit_and_throttle
from keys.authentication import KeyAuth
from keys.hashing import hash_key
from keys.services import claim_last_used, reserve_usage, usage_account
from providers.chat_models import Usage
from providers.registry import AiModel
from providers.token_count import estimate_messages

logger = logging.getLogger(__name__)

TITLE_CHARS = 20
DATA_ID_LENGTH = 22
_ID_ALPHABET = string.ascii_letters + string.digits
INTERRUPTED = "The client disconnected before the answer was complete."


def new_data_id() -> str:
    """A record id like FastGPT's nanoid (22 letters and digits), uniformly random: one
    `token_bytes` call (not one `secrets.choice` per letter), bytes ≥ 248 (= 4 × 62) dropped
    so that each letter is equally likely."""
    while True:
        letters = [_ID_ALPHABET[byte % 62] for byte in secrets.token_bytes(DATA_ID_LENGTH + 10) if byte < 248]
        if len(letters) >= DATA_ID_LENGTH:
            return "".join(letters[:DATA_ID_LENGTH])


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


@dataclass(frozen=True)
class TurnRequest:
    """The request as the turn's read needs it: the header's credential, the validated body
    (or why it is invalid, raised once the key is known to be good)."""

    secret: str
    legacy_app_id: str | None
    data: dict | None
    invalid: ApiError | None
    client_ip: str

    @property
    def wanted_app(self) -> str | None:
        return ((self.data.get("appId") if self.data else None) or self.legacy_app_id) or None

    def read_args(self) -> dict:
        data = self.data or {}
        return {
            "key_hash": hash_key(self.secret),
            "app_id": self.wanted_app if self.data else None,
            "chat_id": data.get("chatId"),
            "response_id": data.get("responseChatItemId") or None,
        }


def turn_request(*, credential: tuple[str, str | None], body: dict | ApiError, client_ip: str) -> TurnRequest:
    """``credential``: the secret and legacy app id of the Authorization header
    (keys.authentication.credential_of); ``body``: the parsed body, or why it could not be."""
    data, invalid = None, body if isinstance(body, ApiError) else None
    if invalid is None:
        try:
            data = validated_chat_request(body)
        except ApiError as exc:
            invalid = exc
    secret, legacy_app_id = credential
    return TurnRequest(secret=secret, legacy_app_id=legacy_app_id, data=data, invalid=invalid, client_ip=client_ip)


def prepare_turn(*, credential: tuple[str, str | None], body: dict | ApiError, client_ip: str) -> Turn:
    """Admit the key, validate the request and load what the model needs, with one read
    (chat/completions/turn_store.py). Raises ApiError. The sync path; the event loop's is
    the view's `begin_turn` (the read on psycopg's async pool, then `finish_turn`)."""
    request = turn_request(credential=credential, body=body, client_ip=client_ip)
    return finish_turn(request, read_turn(**request.read_args()))


def finish_turn_needs_thread(read: TurnRead, *, now) -> bool:
    """Whether `finish_turn` would touch the database (or a cache that may be one) for this
    read: it then runs in a thread hop; else on the event loop. The usual turn — a key
    without a cap, used within the last-used resolution, not rotated, an app without datasets,
    the rate limit counted in local memory — needs none. A key's last-use write is claimed
    here for ``now`` (keys.services.claim_last_used), so that of a burst of one key's turns
    only one takes the hop for it."""
    key = read.key
    if key is None:
        return False  # refused without a query
    return (
        key.replaced_by_id is not None  # its usage account is read (keys.services.usage_account)
        or key.max_usage_points >= 0  # usage reserved before the call
        or claim_last_used(key=key, now=now)  # last_used_at written (judged at `now`, as finish_turn's)
        or read.has_datasets  # the grounding settings and the search
        or (bool(settings.API_KEY_RATE) and not isinstance(cache, LocMemCache))  # e.g. Redis, database
    )


def finish_turn(request: TurnRequest, read: TurnRead, *, now=None) -> Turn:
    """The turn from its read. Errors come in the order of every other endpoint: the key (401,
    402, 429) before the body (400, 413), then the app (403, 404). ``now``: the moment the key
    is judged at (the one `finish_turn_needs_thread` judged at)."""
    auth = admit_and_throttle(read.key, legacy_app_id=request.legacy_app_id, now=now)
    if request.invalid is not None:
        raise request.invalid
    data, client_ip = request.data, request.client_ip
    # The app: an app key's own always wins (as in FastGPT); a global key must name an app of
    # its team (in the body, or in the legacy `fastgpt-<key>-<appId>` form). Another team's
    # app is not found, as an app that exists nowhere (chat/selectors.py's scope rules).
    if auth.key.app_id is None and not request.wanted_app:
        raise KeyOutOfScope(
            "Chat needs an app: use the app's API key, or send `appId` of an app of your team "
            "with a global key."
        )
    if read.app is None:
        raise AppNotFound()
    app = read.app
    try:
        model, model_error = app_model(app), None
    except UpstreamError as exc:
        # Misconfigured, not the client's fault: the turn is still stored, as a failure.
        model, model_error = AiModel(name=app.model, type="llm"), exc
    chat_id = data.get("chatId") or ""
    messages = data["messages"]
    question = messages[-1]

    ai_data_id = data.get("responseChatItemId") or new_data_id()
    if read.response_id_taken:
        raise BadRequest("responseChatItemId: this id is already used in this chat.")
    variables = {**(read.chat_variables or {}), **data["variables"]}

    if chat_id:
        # With a chatId the history is the server's; only the last message is new.
        history = prompting.history_messages(read.recent or [])
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
        if read.has_datasets:  # known from the read: an app without datasets costs no query
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
    """Write the question and the answer (or the error) and count the tokens against the key,
    in one write (chat/completions/turn_store.py): the chat created or its variables and
    metadata merged over what is stored at write time.

    A record id the client named may have been taken by a concurrent turn since
    `prepare_turn` checked it: nothing is then written, and the turn is stored under fresh
    ids; the turn carries the ids actually stored (the answer reports those)."""
    write = _turn_write(turn, answer, response_data, usage_points, duration, error, interrupted)
    try:
        try:
            write_turn(write, atomic=turn.ids_from_client)
        except IntegrityError:
            if not turn.ids_from_client:  # our ids are random: they cannot clash
                raise
            write = _under_fresh_ids(turn, write, taken_record_ids(**_clash_args(write)))
            write_turn(write, atomic=True)
        turn.human_data_id, turn.ai_data_id = write.human_data_id, write.ai_data_id
    finally:
        release_connection()


async def save_turn_async(
    *, turn: Turn, answer: str, response_data: list[dict], usage_points: int, duration: float,
    error: str = "", interrupted: bool = False,
) -> None:
    """`save_turn` on the event loop (psycopg's async pool; turn_store.on_loop())."""
    write = _turn_write(turn, answer, response_data, usage_points, duration, error, interrupted)
    try:
        await write_turn_async(write)
    except IntegrityError:
        if not turn.ids_from_client:
            raise
        write = _under_fresh_ids(turn, write, await taken_record_ids_async(**_clash_args(write)))
        await write_turn_async(write)
    turn.human_data_id, turn.ai_data_id = write.human_data_id, write.ai_data_id


def _turn_write(turn, answer, response_data, usage_points, duration, error, interrupted) -> TurnWrite:
    now = timezone.now()
    return TurnWrite(
        team_id=turn.auth.team_id,
        app_id=turn.app.pk,
        chat_id=turn.chat_id,
        title=turn.question_text[:TITLE_CHARS] or "New chat",
        source=ChatSource.API.value,
        source_name=turn.auth.key.name,
        api_key_id=turn.auth.key.pk,
        custom_uid=turn.custom_uid,
        variables=turn.variables,
        request_variables=turn.request_variables,
        metadata=turn.metadata,
        now=now,
        human_data_id=turn.human_data_id,
        question=turn.question,
        asked_at=now - timedelta(seconds=max(duration, 0)),  # the question's time, not the answer's
        ai_data_id=turn.ai_data_id,
        answer=[{"type": "text", "text": {"content": answer}}] if answer else [],
        response_data=response_data,
        error=error,
        interrupted=interrupted,
        duration=round(duration, 3),
        usage_account_id=usage_account(key=turn.auth.key).pk,
        # Spent points less what was reserved for this call (a failed call gives it back).
        usage_delta=max(usage_points + turn.search_points, 0) - turn.reserved,
    )


def _clash_args(write: TurnWrite) -> dict:
    return {"app_id": write.app_id, "chat_id": write.chat_id, "data_ids": [write.human_data_id, write.ai_data_id]}


def _under_fresh_ids(turn: Turn, write: TurnWrite, taken: set[str]) -> TurnWrite:
    """The taken ids replaced (all of them when none is found taken: they clashed together)."""
    logger.warning("Record id taken in chat %s; storing under fresh ids.", turn.chat_id)
    human_id, ai_id = (
        new_data_id() if data_id in taken or not taken else data_id
        for data_id in (write.human_data_id, write.ai_data_id)
    )
    return replace(write, human_data_id=human_id, ai_data_id=ai_id)


async def save_answer(turn: Turn, *, answer: str, usage: Usage) -> list[dict]:
    """Store a complete answer; returns the run's node records (sent with `detail`)."""
    records = turn.response_records(answer, usage)
    await _store(turn, detached=False, answer=answer, response_data=records,
                 usage_points=usage.total_tokens, duration=turn.elapsed())
    return records


async def record_failure(
    turn: Turn, *, answer: str, usage: Usage | None, error: str, interrupted=False, detached=False
) -> None:
    """Store the question and an AI record carrying the error (and any partial answer).

    `detached`: saving from a task that outlives the request, whose own thread is gone by
    then; the save runs on the loop's shared executor instead.
    """
    records = turn.response_records(answer, usage, error=error)
    await _store(
        turn, detached=detached, answer=answer, response_data=records,
        usage_points=usage.total_tokens if usage else 0, duration=turn.elapsed(),
        error=error, interrupted=interrupted,
    )


async def _store(turn: Turn, *, detached: bool, **fields) -> None:
    """Where the event loop serves the turn (turn_store.on_loop()), `save_turn_async` — or, for
    a rotated key (its usage account is a query), `save_turn` on a thread of the loop's
    executor; else `save_turn` in a thread hop, as Django runs sync code."""
    if on_loop():
        if turn.auth.key.replaced_by_id is None:
            await save_turn_async(turn=turn, **fields)
        else:
            await sync_to_async(save_turn, thread_sensitive=False)(turn=turn, **fields)
    else:
        await sync_to_async(save_turn, thread_sensitive=not detached)(turn=turn, **fields)
