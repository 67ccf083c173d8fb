"""HTTP plumbing shared by every provider client (chat, embeddings, rerank).

httpx rather than requests: the streaming path must hold a thousand open streams per process,
which needs an async client (see docs/benchmarks.md); the sync client serves the few sync
callers with the same request building and error mapping. Clients are pooled: one sync client
per process, one async client per event loop.
"""

import asyncio
import json
import weakref

import httpx
from django.conf import settings

from providers.errors import ProviderError, ProviderTimeout
from providers.registry import AiModel

_sync_client: httpx.Client | None = None
_async_clients: "weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient]" = (
    weakref.WeakKeyDictionary()
)


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


def async_client() -> httpx.AsyncClient:
    """The running event loop's pooled async client."""
    loop = asyncio.get_running_loop()
    client = _async_clients.get(loop)
    if client is None:
        client = _async_clients[loop] = httpx.AsyncClient(limits=_limits())
    return client


def auth_headers(model: AiModel) -> dict:
    return {"Authorization": f"Bearer {model.api_key}"} if model.api_key else {}


def timeout(model: AiModel) -> httpx.Timeout:
    """The model's read timeout, with the server-wide connect timeout."""
    return httpx.Timeout(model.timeout, connect=settings.PROVIDER_CONNECT_TIMEOUT)


def status_error(model: AiModel, response: httpx.Response, body: bytes) -> ProviderError:
    """A non-200 answer, with the provider's own `error.message` when it sent one."""
    detail = ""
    try:
        detail = json.loads(body).get("error", {}).get("message", "")
    except (ValueError, AttributeError):
        pass
    message = f"Model '{model.name}' answered HTTP {response.status_code}"
    return ProviderError(f"{message}: {detail}" if detail else message)


def transport_error(model: AiModel, exc: httpx.HTTPError) -> ProviderError:
    """A request that failed on the wire: timeout (504) or unreachable/broken (502)."""
    if isinstance(exc, httpx.TimeoutException):
        return ProviderTimeout(f"Model '{model.name}' did not answer in time.")
    return ProviderError(f"Model '{model.name}' could not be reached: {exc.__class__.__name__}.")


def json_body(model: AiModel, content: bytes):
    """A response body as JSON, or ProviderError."""
    try:
        return json.loads(content)
    except ValueError:
        raise ProviderError(f"Model '{model.name}' sent a malformed answer.") from None


def post_json_sync(model: AiModel, url: str, body: dict):
    """POST ``body`` and return the JSON answer; every failure is a ProviderError."""
    try:
        response = sync_client().post(url, json=body, headers=auth_headers(model), timeout=timeout(model))
    except httpx.HTTPError as exc:
        raise transport_error(model, exc) from exc
    if response.status_code != 200:
        raise status_error(model, response, response.content)
    return json_body(model, response.content)


async def post_json(model: AiModel, url: str, body: dict):
    """POST ``body`` and return the JSON answer, awaited; every failure is a ProviderError."""
    try:
        response = await async_client().post(url, json=body, headers=auth_headers(model), timeout=timeout(model))
    except httpx.HTTPError as exc:
        raise transport_error(model, exc) from exc
    if response.status_code != 200:
        raise status_error(model, response, response.content)
    return json_body(model, response.content)


async def open_stream(model: AiModel, url: str, body: dict) -> httpx.Response:
    """POST ``body`` and wait for the status only; a refusal (4xx/5xx) is raised here, so the
    caller can answer it before its own response starts. The caller reads and closes the body."""
    client = async_client()
    request = client.build_request("POST", url, json=body, headers=auth_headers(model), timeout=timeout(model))
    try:
        response = await client.send(request, stream=True)
    except httpx.HTTPError as exc:
        raise transport_error(model, exc) from exc
    if response.status_code != 200:
        content = await response.aread()
        await response.aclose()
        raise status_error(model, response, content)
    return response
