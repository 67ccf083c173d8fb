"""POST /api/v1/chat/completions — OpenAI-compatible chat with FastGPT's extras.

A plain async Django view rather than a DRF view: DRF views are synchronous, and a stream
relayed from the model must not hold a thread for its whole life — one process has to keep a
thousand streams open (docs/benchmarks.md). The database work runs in two short sync steps
(chat/turns.py); the model call in between is awaited on the event loop.
"""

import asyncio
import logging
import time

from asgiref.sync import sync_to_async
from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError
from django.http import JsonResponse, StreamingHttpResponse
from django.views.decorators.csrf import csrf_exempt

from chat import llm, sse
from chat.prompting import history_preview
from chat.turns import Turn, prepare_turn, save_turn
from config.errors import ApiError, BadRequest, MethodNotAllowed, RateLimited, RequestTooLarge
from config.envelope import envelope
from config.json_input import parse_json
from config.ids import new_object_id
from keys.authentication import BEARER_CHALLENGE

logger = logging.getLogger(__name__)

CHAT_NODE = "AI Chat"
JSON_OPTIONS = {"ensure_ascii": False, "separators": (",", ":")}
_background: set[asyncio.Task] = set()  # saves of interrupted streams, kept alive until done


@csrf_exempt
async def chat_completions(request):
    if request.method != "POST":
        return error_response(MethodNotAllowed("Use POST."))
    try:
        body = parse_body(request)
        turn = await sync_to_async(prepare_turn)(
            header=request.META.get("HTTP_AUTHORIZATION", ""),
            body=body,
            client_ip=request.META.get("REMOTE_ADDR", ""),
        )
    except ApiError as exc:
        return error_response(exc)
    turn.started = time.monotonic()
    if turn.stream:
        return await stream_answer(turn)
    return await whole_answer(turn)


def parse_body(request) -> dict:
    try:
        raw = request.body
    except RequestDataTooBig:
        raise RequestTooLarge() from None
    body = parse_json(raw or b"null")  # refuses what no database could store (config/json_input.py)
    if not isinstance(body, dict):
        raise BadRequest("The body must be a JSON object.")
    return body


def error_response(exc: ApiError) -> JsonResponse:
    """The envelope plus an OpenAI-style `error` object, so OpenAI SDKs show the message."""
    message = str(exc.detail)
    body = envelope(code=exc.body_code, status_text=exc.status_text, message=message, data=exc.data)
    body["error"] = {"message": message, "type": exc.status_text, "code": exc.body_code}
    response = JsonResponse(body, status=exc.status_code, json_dumps_params=JSON_OPTIONS)
    if exc.status_code == 401:
        response["WWW-Authenticate"] = BEARER_CHALLENGE
    if isinstance(exc, RateLimited):
        response["Retry-After"] = str(max(1, round(exc.wait_seconds)))
    return response


def model_call(turn: Turn) -> dict:
    """The arguments of the model call: the context built for this turn, the app's settings."""
    return {
        "model": turn.model, "messages": turn.provider_messages,
        "temperature": turn.app.temperature, "max_tokens": turn.app.max_tokens,
    }


# --- the answer as one JSON body ----------------------------------------------------------


async def whole_answer(turn: Turn) -> JsonResponse:
    try:
        completion = await llm.complete(**model_call(turn))
    except llm.ProviderError as exc:
        await record_failure(turn, answer="", usage=None, error=exc.message)
        return error_response(exc.as_api_error())

    records = response_records(turn, completion.text, completion.usage)
    await sync_to_async(save_turn)(
        turn=turn, answer=completion.text, response_data=records,
        usage_points=completion.usage.total_tokens, duration=elapsed(turn),
    )
    body = {
        "id": turn.chat_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": turn.model.name,
        "responseChatItemId": turn.ai_data_id,
        "usage": completion.usage.as_openai(),
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": completion.text}, "finish_reason": "stop"}
        ],
    }
    if turn.detail:
        body["responseData"] = records
        body["newVariables"] = turn.variables
    return JsonResponse(body, json_dumps_params=JSON_OPTIONS)


# --- the answer as a stream ---------------------------------------------------------------


async def stream_answer(turn: Turn):
    try:
        # Wait for the provider's status first: a refusal is answered as JSON with its true
        # HTTP status, not as a 200 stream carrying an error.
        stream = await llm.open_stream(**model_call(turn))
    except llm.ProviderError as exc:
        await record_failure(turn, answer="", usage=None, error=exc.message)
        return error_response(exc.as_api_error())
    response = StreamingHttpResponse(stream_events(turn, stream), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each chunk on at once
    return response


async def stream_events(turn: Turn, stream: llm.AnswerStream):
    """OpenAI chunks (detail off), or FastGPT's named events (detail on), in FastGPT's order:
    flowNodeStatus, answer…, answer stop, answer [DONE], flowResponses."""
    created = int(time.time())

    def chunk(delta: dict, finish_reason=None) -> dict:
        return {
            "id": turn.chat_id, "object": "chat.completion.chunk", "created": created,
            "model": turn.model.name,
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
        }

    def emit(payload) -> bytes:
        return sse.event("answer", payload) if turn.detail else sse.data(payload)

    saved = False
    try:
        if turn.detail:
            yield sse.event("flowNodeStatus", {"status": "running", "name": CHAT_NODE})
        first = True
        async for piece in sse.with_keepalive(stream.deltas(), settings.STREAM_KEEPALIVE_SECONDS):
            if piece is sse.SILENCE:
                yield sse.KEEPALIVE
                continue
            yield emit(chunk({"role": "assistant", "content": piece} if first else {"content": piece}))
            first = False

        records = response_records(turn, stream.text, stream.usage)
        # Stored before the stream ends, so a client that has read it all finds the records.
        try:
            await sync_to_async(save_turn)(
                turn=turn, answer=stream.text, response_data=records,
                usage_points=stream.usage.total_tokens, duration=elapsed(turn),
            )
        except DatabaseError:
            # The answer was delivered but not stored: say so, and still end the stream.
            logger.exception("Could not store the turn of chat %s", turn.chat_id)
            saved = True
            yield emit({"error": {"code": 500, "statusText": "storageError", "type": "storageError",
                                  "message": "The answer could not be stored."}})
            yield emit(sse.DONE)
            return
        saved = True
        yield emit(chunk({}, "stop"))
        if turn.include_usage and not turn.detail:
            yield sse.data({**chunk({}), "choices": [], "usage": stream.usage.as_openai()})
        yield emit(sse.DONE)
        if turn.detail:
            yield sse.event("flowResponses", records)
    except llm.ProviderError as exc:
        await record_failure(turn, answer=stream.text, usage=partial_usage(stream), error=exc.message)
        saved = True
        error = exc.as_api_error()
        payload = {"code": error.body_code, "statusText": error.status_text, "message": exc.message}
        if turn.detail:
            yield sse.event("error", payload)
        else:
            # OpenAI SDKs raise on a data chunk carrying `error`.
            yield sse.data({"error": {**payload, "type": error.status_text}})
            yield sse.data(sse.DONE)
    except asyncio.CancelledError:
        # The client went away: keep what was answered, marked as interrupted. The save runs
        # as its own task, since this one is being cancelled.
        if not saved:
            task = asyncio.create_task(record_failure(
                turn, answer=stream.text, usage=partial_usage(stream),
                error="The client disconnected before the answer was complete.", interrupted=True,
                detached=True,
            ))
            _background.add(task)
            task.add_done_callback(_background.discard)
        raise
    finally:
        await stream.close()


def partial_usage(stream: llm.AnswerStream) -> llm.Usage:
    return stream.usage or llm.estimated_usage(stream.messages, stream.text)


async def record_failure(
    turn: Turn, *, answer: str, usage: llm.Usage | None, error: str, interrupted=False, detached=False
):
    """Store the question and an AI record carrying the error (and any partial answer).

    `detached`: saving from a task that outlives the request, whose own thread is gone by
    then; the save runs on the loop's shared executor instead.
    """
    records = response_records(turn, answer, usage, error=error)
    await sync_to_async(save_turn, thread_sensitive=not detached)(
        turn=turn, answer=answer, response_data=records,
        usage_points=usage.total_tokens if usage else 0, duration=elapsed(turn),
        error=error, interrupted=interrupted,
    )


def elapsed(turn: Turn) -> float:
    return time.monotonic() - turn.started


def response_records(turn: Turn, answer: str, usage: llm.Usage | None, *, error: str = "") -> list[dict]:
    """FastGPT's node responses for this run (`responseData` / `flowResponses`)."""
    node = {
        "id": new_object_id(),
        "nodeId": "chatNode",
        "moduleName": CHAT_NODE,
        "moduleType": "chatNode",
        "runningTime": round(elapsed(turn), 2),
        "model": turn.model.name,
        "query": turn.question_text,
        "maxToken": turn.app.max_tokens,
        "temperature": turn.app.temperature,
        "historyPreview": history_preview(turn.provider_messages),
        "contextTotalLen": len(turn.provider_messages),
        "textOutput": answer,
    }
    if usage is not None:
        node.update(
            tokens=usage.total_tokens, inputTokens=usage.prompt_tokens,
            outputTokens=usage.completion_tokens, totalPoints=usage.total_tokens,
            tokensEstimated=usage.estimated,
        )
    if error:
        node["errorText"] = error
    return [node]
