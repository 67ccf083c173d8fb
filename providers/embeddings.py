"""Embedding models: the built-in lexical embedding and OpenAI-compatible `POST /embeddings`.

`embed(model=…, texts=[…])` answers one L2-normalised float32 row per text and the tokens to
bill. It is synchronous: training runs it in a worker process, never on a request.

The built-in `builtin-lexical-embedding` is feature hashing, not a language model: each word of
`providers.words.words()` is hashed (a stable hash, the same in every process) to one of 512
dimensions and a sign, weighted by sublinear term frequency (1 + ln tf), and the row is
L2-normalised; the tokens it bills are the words of the text. Cosine similarity then measures
shared words — it finds "refund policy" in a chunk that says "refund policy", never in one
that says "money back". Function words (STOPWORDS: "the", "of", "how", 的, 了…) are left out
unless a text has nothing else: they dominated every chunk's vector, diluting the words a
question is about and making HNSW's graph link chunks by "the" and "of" (recall and quality
figures: docs/benchmarks.md, "Dataset search"). Vectors stored by the earlier version (with
function words) are re-embedded by migration datasets/0007_builtin_embedding_without_stopwords.

The HTTP client (the process's pooled one, providers/http.py) sends batches of at most 64
texts, with the model's declared timeout, and
retries 429, 5xx and connection errors with exponential backoff (honouring Retry-After) before
raising `ProviderError` / `ProviderTimeout` with text fit for a collection's error message.
"""

import hashlib
import logging
import math
import re
import time
from dataclasses import dataclass
from functools import lru_cache
from itertools import chain

import httpx
import numpy as np
from django.conf import settings

from providers import http
from providers.errors import ProviderError, ProviderTimeout
from providers.registry import BUILTIN_EMBEDDING, AiModel
from providers.words import words

logger = logging.getLogger(__name__)

BUILTIN_DIMENSIONS = 512
_HAN_CHAR = re.compile("[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0002ebef]")
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


def embed(*, model: AiModel, texts: list[str], words_of: list[list[str] | None] | None = None) -> Embedded:
    """Embed `texts` with `model` (rows in the order of `texts`).

    `words_of` (optional, one entry per text): the text's `words()` when the caller has them
    already — the built-in model then skips tokenising it again; other models ignore it."""
    if not texts:
        return Embedded(vectors=np.zeros((0, dimensions_of(model) or 0), dtype=np.float32), tokens=0)
    if model.is_builtin:
        known = words_of or [None] * len(texts)
        per_text = [found if found is not None else words(text) for text, found in zip(texts, known)]
        vectors, word_count = _lexical_words(per_text)
        return Embedded(vectors=vectors, tokens=max(word_count, len(texts)))  # its tokens are words
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


def has_sparse_vectors(model_name: str) -> bool:
    """Whether the model's vectors are mostly zeros. The built-in embedding's are: a text sets
    one of the 512 dimensions per distinct word (a 1,000-character chunk ~70, a question 2–10),
    so pgvector stores them in its index, and compares them, as `sparsevec`
    (datasets/search/vector/pgvector.py)."""
    return model_name == BUILTIN_EMBEDDING


def dimensions_of(model: AiModel) -> int:
    """The vector size of `model`: 512 for the built-in one, else its declared `dimensions`
    (0 when not declared: known from the first vectors it answers)."""
    return BUILTIN_DIMENSIONS if model.is_builtin else model.dimensions


def estimate_tokens(text: str) -> int:
    """A token estimate for providers that report no usage: one per
    Han character, one per four other non-space characters, at least one."""
    han = _HAN_CHAR.subn("", text)[1]
    other = len("".join(text.split())) - han
    return max(1, han + math.ceil(other / 4))


def normalise(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.where(norms == 0, 1, norms)


# --- the built-in lexical embedding -----------------------------------------------------------


# Left out of the built-in embedding (see the module docstring): English and Chinese function
# words, as `providers.words.words()` yields them (lowercase; jieba's segments).
STOPWORDS = frozenset(
    """a an the and or but if then else of to in on at by for with from into onto over under
    about as is are was were be been being am do does did doing done have has had having i me
    my we our you your he him his she her it its they them their this that these those there
    here what which who whom whose when where why how not no nor so than too very can could
    will would shall should may might must just also only own same such both each few more most
    other some any all up down out off again further once s t don doesn isn aren wasn weren
    hasn haven hadn won wouldn shouldn couldn
    的 了 是 在 和 有 也 就 都 而 及 与 或 一个 这 那 这个 那个 我 你 他 她 它 我们 你们 他们 吗 呢 吧
    啊 把 被 让 给 对 从 到 用 以 等 之""".split()
)


@lru_cache(maxsize=1 << 18)
def _slot(word: str) -> tuple[int, float]:
    """The dimension and sign of `word`: from blake2b, stable across processes and runs."""
    h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "little")
    return h % BUILTIN_DIMENSIONS, (1.0 if (h >> 63) & 1 else -1.0)


def lexical_embedding(texts: list[str]) -> np.ndarray:
    return _lexical_words([words(text) for text in texts])[0]


def _lexical_words(per_text: list[list[str]]) -> tuple[np.ndarray, int]:
    """The built-in vectors of texts given as their words, and how many words there were (the
    tokens billed).

    Vectorised over the batch: Python touches each distinct word once (its hash slot), NumPy
    does the term frequencies and sums. STOPWORDS are left out of a text that has other words."""
    size = BUILTIN_DIMENSIONS
    texts = per_text
    billed = sum(map(len, per_text))
    per_text = [[w for w in found if w not in STOPWORDS] or found for found in per_text]
    all_words = list(chain.from_iterable(per_text))
    if not all_words:
        return np.zeros((len(texts), size), dtype=np.float32), 0
    vocabulary = {word: i for i, word in enumerate(dict.fromkeys(all_words))}
    slots = [_slot(word) for word in vocabulary]
    dimensions = np.fromiter((d for d, _ in slots), dtype=np.int64, count=len(slots))
    signs = np.fromiter((sign for _, sign in slots), dtype=np.float64, count=len(slots))
    word_ids = np.fromiter(map(vocabulary.__getitem__, all_words), dtype=np.int64, count=len(all_words))
    rows = np.repeat(np.arange(len(texts), dtype=np.int64), [len(found) for found in per_text])
    # One key per (text, word): its count is the term frequency.
    keys, counts = np.unique(rows * len(vocabulary) + word_ids, return_counts=True)
    key_rows, key_words = np.divmod(keys, len(vocabulary))
    summed = np.bincount(
        key_rows * size + dimensions[key_words],
        weights=signs[key_words] * (1.0 + np.log(counts)),
        minlength=len(texts) * size,
    )
    return normalise(summed.reshape(len(texts), size)), billed


# --- OpenAI-compatible HTTP -----------------------------------------------------------------

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
    headers = http.auth_headers(model)
    timeout = http.timeout(model)
    payload = {"model": model.name, "input": texts}
    attempts = 1 + max(0, settings.EMBEDDING_HTTP_RETRIES)
    where = f"Embedding model {model.name!r} at {model.base_url}"
    for attempt in range(attempts):
        last = attempt == attempts - 1
        response = None
        try:
            response = http.sync_client().post(url, json=payload, headers=headers, timeout=timeout)
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
