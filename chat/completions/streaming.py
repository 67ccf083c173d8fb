"""The answer as server-sent events, as OpenAI clients and FastGPT clients read them.

`stream_events` relays the model's deltas as OpenAI chunks (detail off) or FastGPT's named
events (detail on), keeps the connection alive through long silences, and stores the turn
before the stream ends, whatever happens (done, provider failure, client gone).
"""

import asyncio
import json
import logging
import time
from collections.abc import AsyncIterator

from django.conf import settings

from chat.completions.services import INTERRUPTED, Turn, record_failure, save_answer
from config.errors import ApiError, InternalError, StorageError
from providers.chat_models import AnswerStream, Usage
from providers.errors import ProviderError

logger = logging.getLogger(__name__)

KEEPALIVE = b": keep-alive\n\n"
DONE = "[DONE]"


def data(payload) -> bytes:
    """An unnamed event (OpenAI's format): `data: <json>`."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def event(name: str, payload) -> bytes:
    """A named event (FastGPT's detail format): `event: <name>` then `data: <json>`."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {text}\n\n".encode()


class Silence:
    """Marks a pause longer than the keep-alive interval in `with_keepalive`."""


SILENCE = Silence()
_END = object()


async def with_keepalive(source: AsyncIterator, interval: float) -> AsyncIterator:
    """Yield the items of ``source``; yield SILENCE whenever it is quiet for ``interval`` s.

    A task reads ``source`` into a queue and one timer per stream adds SILENCE after a quiet
    interval, so each item costs a queue hand-over rather than a timed wait (a thousand
    streams relay thousands of chunks a second). An error of ``source`` is raised here.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    last_put = loop.time()

    def put(item, error=None) -> None:
        nonlocal last_put
        last_put = loop.time()
        queue.put_nowait((item, error))

    async def pump() -> None:
        try:
            async for item in source:
                put(item)
        except Exception as exc:  # handed to the consumer, raised there
            put(_END, exc)
        else:
            put(_END)

    def tick() -> None:
        nonlocal timer
        if loop.time() - last_put >= interval:
            put(SILENCE)
        timer = loop.call_later(max(last_put + interval - loop.time(), 0), tick)

    reader = asyncio.ensure_future(pump())
    timer = loop.call_later(interval, tick)
    try:
        while True:
            item, error = await queue.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        timer.cancel()
        reader.cancel()


# --- the answer ---------------------------------------------------------------------------

_background: set[asyncio.Task] = set()  # saves of interrupted streams, kept alive until done


def error_payload(error: ApiError) -> dict:
    """An error as a stream carries it (FastGPT's fields)."""
    return {"code": error.body_code, "statusText": error.status_text, "message": str(error.detail)}


async def stream_events(turn: Turn, stream: AnswerStream):
    """OpenAI chunks (detail off), or FastGPT's named events (detail on), in FastGPT's order:
    flowNodeStatus, answer…, answer stop, answer [DONE], flowResponses.

    Whatever happens the turn is stored before the stream ends: the answer, or the failure
    with any partial answer; a client that goes away leaves it stored as interrupted."""
    created = int(time.time())

    def chunk(delta: dict, finish_reason=None) -> dict:
        return {
            "id": turn.chat_id, "object": "chat.completion.chunk", "created": created,
            "model": turn.model.name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def emit(payload) -> bytes:
        return event("answer", payload) if turn.detail else data(payload)

    stored = False
    try:
        if turn.detail:
            for name in turn.node_names():  # a grounded app's dataset search first
                yield event("flowNodeStatus", {"status": "running", "name": name})
        failure: ApiError | None = None
        first = True
        try:
            async for piece in with_keepalive(stream.deltas(), settings.STREAM_KEEPALIVE_SECONDS):
                if piece is SILENCE:
                    yield KEEPALIVE
                    continue
                yield emit(chunk({"role": "assistant", "content": piece} if first else {"content": piece}))
                first = False
        except ProviderError as exc:
            failure = exc.as_api_error()
        except Exception:  # a bug of ours must not cut the stream nor lose the turn
            logger.exception("Relaying the answer of chat %s failed", turn.chat_id)
            failure = InternalError("The answer could not be relayed.")

        usage = stream.usage_so_far()
        # Stored before the stream ends, so a client that has read it all finds the records.
        try:
            if failure is None:
                records = await save_answer(turn, answer=stream.text, usage=usage)
            else:
                await record_failure(turn, answer=stream.text, usage=usage, error=str(failure.detail))
        except Exception:
            # The answer was delivered but not stored: say so, and still end the stream.
            logger.exception("Could not store the turn of chat %s", turn.chat_id)
            stored = True
            error = StorageError()
            yield emit({"error": {**error_payload(error), "type": error.status_text}})
            yield emit(DONE)
            return
        stored = True
        if failure is not None:
            payload = error_payload(failure)
            if turn.detail:
                yield event("error", payload)
            else:
                # OpenAI SDKs raise on a data chunk carrying `error`.
                yield data({"error": {**payload, "type": failure.status_text}})
                yield data(DONE)
            return
        yield emit(chunk({}, "stop"))
        if turn.include_usage and not turn.detail:
            yield data({**chunk({}), "choices": [], "usage": usage.as_openai()})
        yield emit(DONE)
        if turn.detail:
            yield event("flowResponses", records)
    except asyncio.CancelledError:
        # The client went away: keep what was answered, marked as interrupted.
        if not stored:
            store_interrupted(turn, answer=stream.text, usage=stream.usage_so_far())
        raise
    finally:
        await stream.close()


def store_interrupted(turn: Turn, *, answer: str, usage: Usage) -> None:
    """Store a turn whose client went away. The save runs as its own task, since the
    request's task is being cancelled, and is kept alive until done."""
    task = asyncio.create_task(record_failure(
        turn, answer=answer, usage=usage, error=INTERRUPTED, interrupted=True, detached=True,
    ))
    _background.add(task)
    task.add_done_callback(_background.discard)
