"""POST /api/v1/chat/completions — OpenAI-compatible chat with FastGPT's extras.

A plain async Django view rather than a DRF view: DRF views are synchronous, and a stream
relayed from the model must not hold a thread for its whole life — one process has to keep a
thousand streams open (docs/benchmarks.md). The key check and rate limit are the ones DRF's
classes run for every other endpoint (keys/access.py), on the key the turn's one read found.
The database work is one read before the model call and one write after it (turn_store.py):
on PostgreSQL on psycopg's async pool, with no thread hop, when the event loop serves the
request; otherwise two short sync steps (services.py). The model call in between is awaited
on the event loop.
"""

import asyncio
import logging
import time

from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig
from django.http import JsonResponse, StreamingHttpResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt

from chat.completions import services
from chat.completions.services import Turn, prepare_turn, record_failure, release_connection, save_answer
from chat.completions.streaming import store_interrupted, stream_events
from chat.completions.turn_store import on_loop, read_turn_async
from config.errors import ApiError, BadRequest, InternalError, MethodNotAllowed, MissingCredential, RequestTooLarge
from config.exception_handler import JSON_OPTIONS, as_api_exception, error_json_response
from config.json_input import parse_json
from keys.authentication import credential_of
from providers import chat_models
from providers.chat_models import estimated_usage
from providers.errors import ProviderError

logger = logging.getLogger(__name__)


@csrf_exempt
async def chat_completions(request):
    if request.method != "POST":
        return error_response(MethodNotAllowed("Use POST.", allowed=["POST"]))
    try:
        turn = await begin_turn(request) if on_loop() else await sync_to_async(start_turn)(request)
        if turn.model_error is not None:
            await record_failure(turn, answer="", usage=None, error=str(turn.model_error.detail))
            return error_response(turn.model_error)
        if turn.stream:
            return await stream_answer(turn)
        return await whole_answer(turn)
    except ApiError as exc:
        return error_response(exc)
    except Exception as exc:
        # Never Django's error page (HTML under DEBUG): the envelope and OpenAI's `error`.
        known = as_api_exception(exc)  # e.g. the database unavailable: a 503 to retry
        if isinstance(known, ApiError):
            return error_response(known)
        logger.exception("Chat completion failed")
        return error_response(InternalError())


async def begin_turn(request) -> Turn:
    """`start_turn` on the event loop (PostgreSQL: turn_store.on_loop()): the read on psycopg's
    async pool, then the rest inline — or on a thread of the loop's executor when it touches
    the database (services.finish_turn_needs_thread: a capped, rotated or long-unused key,
    datasets). Not a thread-sensitive hop: the lean handler gives such a request no thread of
    its own (config/asgi.py)."""
    credential, body = request_parts(request)
    turn_request = services.turn_request(credential=credential, body=body, client_ip=client_ip(request))
    read = await read_turn_async(**turn_request.read_args())
    now = timezone.now()  # one moment for both: whether the key's last use is due a write, and the write
    if services.finish_turn_needs_thread(read, now=now):
        return await sync_to_async(finish_turn_and_release, thread_sensitive=False)(turn_request, read, now)
    return services.finish_turn(turn_request, read, now=now)


def finish_turn_and_release(turn_request, read, now) -> Turn:
    try:
        return services.finish_turn(turn_request, read, now=now)
    finally:
        release_connection()


def start_turn(request) -> Turn:
    """The key check and rate limit (as for every endpoint) and the turn's preparation: one
    sync step with one database read (services.prepare_turn), after which the connection is
    given back. The body is parsed first, but its errors are raised after the key's."""
    try:
        credential, body = request_parts(request)
        return prepare_turn(credential=credential, body=body, client_ip=client_ip(request))
    finally:
        release_connection()


def request_parts(request) -> tuple[tuple[str, str | None], dict | ApiError]:
    """The Authorization header's credential (MissingCredential when absent or malformed), and
    the parsed body or why it could not be parsed (raised only after the key is checked)."""
    credential = credential_of(request.META.get("HTTP_AUTHORIZATION", ""))
    if credential is None:
        raise MissingCredential()
    try:
        return credential, parse_body(request)
    except ApiError as exc:
        return credential, exc


def client_ip(request) -> str:
    return request.META.get("REMOTE_ADDR", "")


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
    return error_json_response(exc, openai=True)


async def whole_answer(turn: Turn) -> JsonResponse:
    """The answer as one JSON body (`chat.completion`)."""
    try:
        completion = await chat_models.complete(**turn.model_call())
    except ProviderError as exc:
        await record_failure(turn, answer="", usage=None, error=exc.message)
        return error_response(exc.as_api_error())
    except asyncio.CancelledError:
        # The client went away while the model answered: the question was sent (and is paid
        # for), so the turn is stored as interrupted, like a stream's, its prompt counted.
        store_interrupted(turn, answer="", usage=estimated_usage(turn.provider_messages, ""))
        raise

    records = await save_answer(turn, answer=completion.text, usage=completion.usage)
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


async def stream_answer(turn: Turn):
    """The answer as server-sent events (chat/completions/streaming.py)."""
    try:
        # Wait for the provider's status first: a refusal is answered as JSON with its true
        # HTTP status, not as a 200 stream carrying an error.
        stream = await chat_models.open_stream(**turn.model_call())
    except ProviderError as exc:
        await record_failure(turn, answer="", usage=None, error=exc.message)
        return error_response(exc.as_api_error())
    response = StreamingHttpResponse(stream_events(turn, stream), content_type="text/event-stream; charset=utf-8")
    response["Cache-Control"] = "no-cache"
    response["X-Accel-Buffering"] = "no"  # nginx: pass each chunk on at once
    return response
