"""Embedding models: the built-in lexical embedding and OpenAI-compatible `POST /embeddings`.

`embed(model=…, texts=[…])` answers one L2-normalised float32 row per text and the tokens to
bill. It is synchronous: training runs it in a worker process, never on a request.

The built-in `builtin-lexical-embedding` is feature hashing, not a language model: each word of
`providers.words.words()` is hashed (a stable hash, the same in every process) to one of 512
dimensions and a sign, weighted by sublinear term frequency (1 + ln tf), and the row is
L2-normalised. Cosine similarity then measures shared words — it finds "refund policy" in a
chunk that says "refund policy", never in one that says "money back".

The HTTP client sends batches of at most 64 texts, with the model's declared timeout, and
retries 429, 5xx and connection errors with exponential backoff (honouring Retry-After) before
raising `ProviderError` / `ProviderTimeout` with text fit for a collection's error message.
"""

import hashlib
import logging
import math
import threading
import time
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache

import httpx
import numpy as np
from django.conf import settings

from providers.errors import ProviderError, ProviderTimeout
from providers.registry import AiModel
from providers.words import words

logger = logging.getLogger(__name__)

BUILTIN_DIMENSIONS = 512
BATCH_SIZE = 64
# Retry-After beyond this is not waited for inside one attempt (training retries later).
MAX_RETRY_AFTER_SECONDS = 30.0


class EmbeddingRejected(ProviderError):
    """The provider refused the input itself (a 4xx other than 429): retrying the same batch
    fails the same way, but one bad text may be to blame rather than all of them."""


@dataclass
class Embedded:
    vectors: np.ndarray  # shape (n, dims), float32, each row L2-normalised (zero rows stay zero)
    tokens: int  # tokens billed: the provider's usage, else estimated


def embed(*, model: AiModel, texts: list[str]) -> Embedded:
    """Embed `texts` with `model` (rows in the order of `texts`)."""
    if not texts:
        return Embedded(vectors=np.zeros((0, dimensions_of(model) or 0), dtype=np.float32), tokens=0)
    if model.is_builtin:
        return Embedded(
            vectors=lexical_embedding(texts), tokens=sum(estimate_tokens(t) for t in texts)
        )
    rows, tokens = [], 0
    for start in range(0, len(texts), BATCH_SIZE):
        batch = texts[start : start + BATCH_SIZE]
        vectors, used = _call(model, batch)
        rows.append(vectors)
        tokens += used
    vectors = np.vstack(rows)
    if model.dimensions and vectors.shape[1] != model.dimensions:
        raise ProviderError(
            f"Embedding model {model.name!r} answered {vectors.shape[1]}-dimension vectors but is "
            f"declared with {model.dimensions}: fix `dimensions` in AI_MODELS."
        )
    return Embedded(vectors=normalise(vectors), tokens=tokens)


def dimensions_of(model: AiModel) -> int:
    """The vector size of `model`: 512 for the built-in one, else its declared `dimensions`
    (0 when not declared: known from the first vectors it answers)."""
    return BUILTIN_DIMENSIONS if model.is_builtin else model.dimensions


def estimate_tokens(text: str) -> int:
    """A token estimate for providers that report no usage (and the built-in embedding): one per
    Han character, one per four other non-space characters, at least one."""
    han = sum(1 for ch in text if "\u3400" <= ch <= "\u9fff")
    other = sum(1 for ch in text if not ch.isspace()) - han
    return max(1, han + math.ceil(other / 4))


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


# --- the built-in lexical embedding -----------------------------------------------------------


@lru_cache(maxsize=1 << 18)
def _slot(word: str) -> tuple[int, float]:
    """The dimension and sign of `word`: from blake2b, stable across processes and runs."""
    h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    return h % BUILTIN_DIMENSIONS, (1.0 if (h >> 63) & 1 else -1.0)


def lexical_embedding(texts: list[str]) -> np.ndarray:
    out = np.zeros((len(texts), BUILTIN_DIMENSIONS), dtype=np.float32)
    for row, text in enumerate(texts):
        counts = Counter(words(text))
        if not counts:
            continue
        slots = [_slot(w) for w in counts]
        dims = np.fromiter((s[0] for s in slots), dtype=np.intp, count=len(slots))
        weights = np.fromiter(
            (s[1] * (1.0 + math.log(n)) for s, n in zip(slots, counts.values())),
            dtype=np.float32,
            count=len(slots),
        )
        np.add.at(out[row], dims, weights)
    return normalise(out)


# --- OpenAI-compatible HTTP -----------------------------------------------------------------

_client: httpx.Client | None = None
_client_lock = threading.Lock()


def _http() -> httpx.Client:
    """One pooled client per process (httpx.Client is thread-safe)."""
    global _client
    with _client_lock:
        if _client is None:
            _client = httpx.Client(
                limits=httpx.Limits(max_connections=64, max_keepalive_connections=16),
                follow_redirects=False,
            )
        return _client


def _retryable(status: int) -> bool:
    return status == 429 or status >= 500


def _provider_message(response: httpx.Response) -> str:
    try:
        body = response.json()
        error = body.get("error") if isinstance(body, dict) else None
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:500]
        if isinstance(error, str):
            return error[:500]
        if isinstance(body, dict) and body.get("message"):
            return str(body["message"])[:500]
    except ValueError:
        pass
    return response.text[:300] or response.reason_phrase


def _wait_before_retry(attempt: int, response: httpx.Response | None) -> float:
    base = settings.EMBEDDING_HTTP_BACKOFF_SECONDS * (2**attempt)
    if response is not None:
        try:
            return min(max(base, float(response.headers.get("retry-after", ""))), MAX_RETRY_AFTER_SECONDS)
        except ValueError:
            pass
    return base


def _call(model: AiModel, texts: list[str]) -> tuple[np.ndarray, int]:
    """One batch: the vectors (unnormalised, as answered) and the tokens used."""
    url = f"{model.base_url}/embeddings"
    headers = {"Authorization": f"Bearer {model.api_key}"} if model.api_key else {}
    timeout = httpx.Timeout(model.timeout, connect=min(settings.PROVIDER_CONNECT_TIMEOUT, model.timeout))
    payload = {"model": model.name, "input": texts}
    attempts = 1 + max(0, settings.EMBEDDING_HTTP_RETRIES)
    where = f"Embedding model {model.name!r} at {model.base_url}"
    for attempt in range(attempts):
        last = attempt == attempts - 1
        response = None
        try:
            response = _http().post(url, json=payload, headers=headers, timeout=timeout)
        except httpx.TimeoutException as exc:
            # A slow provider is not retried here: another wait of the same length would mostly
            # block the worker; training retries the batch later.
            raise ProviderTimeout(f"{where}: no answer within {model.timeout:g} s ({type(exc).__name__}).") from exc
        except httpx.TransportError as exc:
            if last:
                raise ProviderError(
                    f"{where}: connection failed after {attempts} attempts: {exc or type(exc).__name__}."
                ) from exc
        else:
            if response.status_code == 200:
                return _parse(response, texts, where)
            if not _retryable(response.status_code):
                error = EmbeddingRejected if 400 <= response.status_code < 500 else ProviderError
                raise error(f"{where}: HTTP {response.status_code}: {_provider_message(response)}")
            if last:
                raise ProviderError(
                    f"{where}: HTTP {response.status_code} after {attempts} attempts: {_provider_message(response)}"
                )
        wait = _wait_before_retry(attempt, response)
        logger.warning("%s: attempt %d failed, retrying in %.1f s", where, attempt + 1, wait)
        time.sleep(wait)
    raise AssertionError("unreachable")


def _parse(response: httpx.Response, texts: list[str], where: str) -> tuple[np.ndarray, int]:
    try:
        body = response.json()
        items = sorted(body["data"], key=lambda item: item.get("index", 0))
        if len(items) != len(texts):
            raise ValueError(f"{len(items)} vectors for {len(texts)} inputs")
        vectors = np.array([item["embedding"] for item in items], dtype=np.float32)
        if vectors.ndim != 2 or vectors.shape[1] == 0:
            raise ValueError("vectors of different or zero sizes")
        if not np.isfinite(vectors).all():
            raise ValueError("non-finite numbers in a vector")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ProviderError(f"{where}: unreadable answer: {exc}") from exc
    usage = body.get("usage") if isinstance(body, dict) else None
    tokens = None
    if isinstance(usage, dict):
        tokens = usage.get("total_tokens", usage.get("prompt_tokens"))
    if not isinstance(tokens, int) or tokens < 0:
        tokens = sum(estimate_tokens(t) for t in texts)
    return vectors, tokens
