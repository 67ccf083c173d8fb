"""HTTP plumbing shared by every provider client (chat, embeddings, rerank).

Async calls (the chat turn's model call and its stream relay) go through **aiohttp**: one
pooled `ClientSession` per event loop. It is the upstream client picked by the figures in
docs/benchmarks.md ("Upstream HTTP client"): 0.08–0.28 × httpx's CPU per call, for the
non-stream call and the stream relay alike, and asyncio-native (no anyio cancel scope around
every read), which the streaming path needs to hold a thousand open streams per process.

The few sync callers (the question guide, datasets' embedding/rerank clients, query
extension) keep **httpx's sync client**, one per process: they run in worker threads where an
event-loop client cannot serve them, and their cost is the model's, not the client's. Both
sides share the request building (JSON body, auth header), the timeouts and the error mapping
to ProviderError (→ 502) / ProviderTimeout (→ 504), with the same messages.
"""

import asyncio
import atexit
import json
from collections.abc import AsyncIterator

import aiohttp
import httpx
from django.conf import settings

from providers.errors import ProviderError, ProviderTimeout
from providers.registry import AiModel

# A provider's idle keep-alive connections are dropped a little before the 5 s after which
# common servers (uvicorn, gunicorn, nginx's default is 75 s) close them, so a call never
# goes out on a connection the provider is closing at that moment.
KEEPALIVE_SECONDS = 4.0

_sync_client: httpx.Client | None = None
_sessions: dict[asyncio.AbstractEventLoop, aiohttp.ClientSession] = {}


def _limits() -> httpx.Limits:
    return httpx.Limits(
        max_connections=settings.PROVIDER_MAX_CONNECTIONS,
        max_keepalive_connections=settings.PROVIDER_MAX_KEEPALIVE,
    )


def sync_client() -> httpx.Client:
    """The process's pooled sync client."""
    global _sync_client
    if _sync_client is None:
        _sync_client = httpx.Client(limits=_limits())
    return _sync_client


def async_session() -> aiohttp.ClientSession:
    """The running event loop's pooled session (a server runs one loop per process)."""
    loop = asyncio.get_running_loop()
    session = _sessions.get(loop)
    if session is None:
        _forget_closed_loops()
        connector = aiohttp.TCPConnector(
            limit=settings.PROVIDER_MAX_CONNECTIONS, limit_per_host=0, keepalive_timeout=KEEPALIVE_SECONDS
        )
        # No session-wide timeout: each call sets the model's own (`timeout()`).
        session = _sessions[loop] = aiohttp.ClientSession(
            connector=connector, timeout=aiohttp.ClientTimeout(total=None)
        )
    return session


def _forget_closed_loops() -> None:
    """Drop the sessions of loops that have ended (sync code run through `async_to_sync`, as in
    tests and management commands, gets a loop per call). A session refers to its loop, so it
    would otherwise keep every such loop alive; a closed loop's sockets cannot be awaited, so its
    connector is only marked closed (its transports are already gone with the loop)."""
    for loop in [loop for loop in _sessions if loop.is_closed()]:
        session = _sessions.pop(loop)
        connector = session.connector
        session.detach()
        if connector is not None:
            connector._close()  # sync part of close(); with the loop closed it awaits nothing


atexit.register(_forget_closed_loops)  # else each one's __del__ reports an unclosed session


def auth_headers(model: AiModel) -> dict:
    return {"Authorization": f"Bearer {model.api_key}"} if model.api_key else {}


def timeout(model: AiModel) -> httpx.Timeout:
    """The model's read timeout, with the server-wide connect timeout (sync client)."""
    return httpx.Timeout(model.timeout, connect=settings.PROVIDER_CONNECT_TIMEOUT)


def async_timeout(model: AiModel) -> aiohttp.ClientTimeout:
    """The same timeouts for aiohttp: the model's timeout for each read (also between two
    chunks of a stream) and for getting a connection from the pool, the server-wide connect
    timeout for opening one; no limit on the whole call (a stream may last long)."""
    return aiohttp.ClientTimeout(
        total=None, connect=model.timeout, sock_connect=settings.PROVIDER_CONNECT_TIMEOUT, sock_read=model.timeout
    )


def encode_json(body: dict) -> bytes:
    """A request body as httpx encodes `json=` (compact, UTF-8, no NaN), for both clients."""
    return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


def status_error(model: AiModel, status: int, body: bytes) -> ProviderError:
    """A non-200 answer, with the provider's own `error.message` when it sent one."""
    detail = ""
    try:
        detail = json.loads(body).get("error", {}).get("message", "")
    except (ValueError, AttributeError):
        pass
    message = f"Model '{model.name}' answered HTTP {status}"
    return ProviderError(f"{message}: {detail}" if detail else message)


def transport_error(model: AiModel, exc: Exception) -> ProviderError:
    """A request that failed on the wire: timeout (504) or unreachable/broken (502).
    ``exc`` is an httpx.HTTPError (sync client) or an aiohttp.ClientError / asyncio.TimeoutError."""
    if isinstance(exc, (httpx.TimeoutException, asyncio.TimeoutError)):
        return ProviderTimeout(f"Model '{model.name}' did not answer in time.")
    return ProviderError(f"Model '{model.name}' could not be reached: {exc.__class__.__name__}.")


# The failures of an aiohttp call: its own errors, and timeouts (its timeout errors are both).
ASYNC_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


def json_body(model: AiModel, content: bytes):
    """A response body as JSON, or ProviderError."""
    try:
        return json.loads(content)
    except ValueError:
        raise ProviderError(f"Model '{model.name}' sent a malformed answer.") from None


def post_json_sync(model: AiModel, url: str, body: dict):
    """POST ``body`` and return the JSON answer; every failure is a ProviderError."""
    headers = {**auth_headers(model), "Content-Type": "application/json"}
    try:
        response = sync_client().post(url, content=encode_json(body), headers=headers, timeout=timeout(model))
    except httpx.HTTPError as exc:
        raise transport_error(model, exc) from exc
    if response.status_code != 200:
        raise status_error(model, response.status_code, response.content)
    return json_body(model, response.content)


def _post(model: AiModel, url: str, body: dict):
    headers = {**auth_headers(model), "Content-Type": "application/json"}
    return async_session().post(url, data=encode_json(body), headers=headers, timeout=async_timeout(model))


async def post_json(model: AiModel, url: str, body: dict):
    """POST ``body`` and return the JSON answer, awaited; every failure is a ProviderError."""
    try:
        async with _post(model, url, body) as response:
            content = await response.read()
    except ASYNC_ERRORS as exc:
        raise transport_error(model, exc) from exc
    if response.status != 200:
        raise status_error(model, response.status, content)
    return json_body(model, content)


async def open_stream(model: AiModel, url: str, body: dict) -> aiohttp.ClientResponse:
    """POST ``body`` and wait for the status only; a refusal (4xx/5xx) is raised here, so the
    caller can answer it before its own response starts. The caller reads the body and then
    calls ``release()`` (the connection goes back to the pool only if the body was read to its
    end; otherwise it is closed)."""
    try:
        response = await _post(model, url, body)
    except ASYNC_ERRORS as exc:
        raise transport_error(model, exc) from exc
    if response.status != 200:
        try:
            content = await response.read()
        except ASYNC_ERRORS as exc:
            raise transport_error(model, exc) from exc
        finally:
            response.release()
        raise status_error(model, response.status, content)
    return response


async def body_chunks(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """A streamed body's bytes as they arrive; a broken body raises its aiohttp error only
    after the bytes that arrived before the break.

    aiohttp's reader raises a broken body's error before handing out what it had already
    buffered; those bytes are a provider's last events before it cut the stream (the partial
    answer that is relayed and stored), so they are taken from the reader's buffer first. Only
    `iter_any()` reads this reader, so the buffer holds whole unread chunks.
    """
    content = response.content
    try:
        async for chunk in content.iter_any():
            yield chunk
    except aiohttp.ClientError:
        leftover = b"".join(getattr(content, "_buffer", ()))
        if leftover:
            yield leftover
        raise
