"""A local OpenAI-compatible provider (chat completions, embeddings, rerank) for tests and benchmarks.

It speaks the real wire protocol over real HTTP (JSON, and SSE for streams), so the server
under test exercises its actual HTTP client code. It is a plain ASGI app served by uvicorn:
pure asyncio, one coroutine per request, so a single process holds thousands of open streams.

In-process, from pytest (the server runs in a background thread on a free port):

    provider = FakeProvider(api_key="test-provider-key")
    provider.start()
    provider.base_url      # "http://127.0.0.1:PORT/v1"
    provider.requests      # [{"method", "path", "headers", "body"}, ...] as received
    provider.reset()       # forget the recorded requests
    provider.stop()

Standalone, for benchmarks (serves until killed):

    python -m tests.fake_provider --port 9100 [--api-key K] [--chunk-delay 0.0]

and then `GET /_requests` lists the recorded requests, `DELETE /_requests` clears them.

Answers are deterministic. From the text of the LAST user message: "Answer to: <text>", unless
directives in that text say otherwise (they are removed from <text>; several may combine):

    [[answer:TEXT]]                the answer is exactly TEXT
    [[echo-messages]]              the answer is json.dumps(messages, ensure_ascii=False)
    [[fail:STATUS]]                answer HTTP STATUS with an OpenAI error body
    [[delay:SECONDS]]              wait before sending the status line and headers
    [[first-chunk-delay:SECONDS]]  stream: headers at once, then wait before the first chunk
    [[chunk-delay:SECONDS]]        stream: wait between chunks
    [[cut:N]]                      stream: drop the connection after N content chunks
    [[no-usage]]                   no `usage` in the response nor in the usage chunk
    [[usage:JSON]]                 `usage` is exactly this JSON value (e.g. {"prompt_tokens": 5,
                                   "completion_tokens": null}), in the response or the usage chunk
    [[body:JSON]]                  non-stream: the whole response body is this JSON value
    [[chunks:JSON]]                stream: each element of this JSON list is sent as one `data:`
                                   chunk before the answer's words (odd chunks a provider may send)

A [[delay]] comes before a [[fail]], so together they make a slow error. A directive with a
bad value (e.g. [[delay:soon]], JSON that does not parse) is answered with a 400; JSON in a
directive must not contain "]]" (write "] ]"). Usage counts words: prompt_tokens over
every message's text, completion_tokens over the answer (at least 1). Embeddings are unit
vectors derived from a hash of each input (64 dimensions unless `dimensions` says otherwise);
their inputs honour [[fail:STATUS]] and [[delay:SECONDS]] too. Rerank (`POST /v1/rerank`,
Jina/Cohere shape) scores each document by word overlap: the share of the query's distinct
lowercase words that the document contains (0..1), ties kept in document order; its query
honours [[fail:STATUS]] and [[delay:SECONDS]].
"""

import argparse
import asyncio
import base64
import hashlib
import json
import logging
import math
import random
import re
import socket
import struct
import threading
import time
import uuid

import uvicorn

LLM_MODELS = ("fake-llm", "gpt-4o-mini")
EMBEDDING_MODELS = ("fake-embedding", "text-embedding-3-small")
RERANK_MODELS = ("fake-rerank",)
DEFAULT_DIMENSIONS = 64

_DIRECTIVE = re.compile(
    r"\[\[(answer|echo-messages|fail|delay|first-chunk-delay|chunk-delay|cut|no-usage|usage|body|chunks)"
    r"(?::(.*?))?\]\]",
    re.DOTALL,
)
# A word with the whitespace after it (and, for the first, any before it), so that joining
# the stream's deltas gives back the answer exactly.
_WORD = re.compile(r"(?:^\s*)?\S+\s*")
_RERANK_WORD = re.compile(r"\w+")

# A stand-in for a word while a chunk is encoded once; JSON always escapes it the same way,
# and the content is the last field where it can occur.
_NOT_SENT = object()  # no usage chunk (a usage of null may be sent on purpose)
_SLOT = "\x00"
_SLOT_JSON = json.dumps(_SLOT).encode()

_ERROR_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("invalid_request_error", "forbidden"),
    404: ("invalid_request_error", "not_found"),
    429: ("rate_limit_error", "rate_limit_exceeded"),
}


class DirectiveError(ValueError):
    """A directive with a value that cannot be parsed: answered with a 400."""


class _DropConnection(Exception):
    """Raised mid-stream so that uvicorn closes the socket without finishing the response."""


class _HideDroppedConnections(logging.Filter):
    """uvicorn logs every exception from the app; a deliberate [[cut:N]] is not an error."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], _DropConnection))


logging.getLogger("uvicorn.error").addFilter(_HideDroppedConnections())


# --- the answer's content -------------------------------------------------------------------


def message_text(message: dict) -> str:
    """The text of a message whose content is a string or a list of content parts."""
    content = message.get("content")
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            str(part.get("text", ""))
            for part in content
            if isinstance(part, dict) and part.get("type") == "text"
        )
    return ""


def count_words(text: str) -> int:
    return len(text.split())


def parse_directives(text: str) -> tuple[dict, str]:
    """The directives found in `text` (name → value) and the text without them."""
    found = {}
    for match in _DIRECTIVE.finditer(text):
        name, value = match.group(1), match.group(2)
        try:
            if name in ("fail", "cut"):
                found[name] = int(value)
            elif name in ("delay", "first-chunk-delay", "chunk-delay"):
                found[name] = float(value)
                if not math.isfinite(found[name]) or found[name] < 0:
                    raise ValueError(value)
            elif name == "answer":
                found[name] = value or ""
            elif name in ("usage", "body", "chunks"):
                found[name] = json.loads(value)
                if name == "chunks" and not isinstance(found[name], list):
                    raise ValueError(value)
            else:
                found[name] = True
        except (TypeError, ValueError):
            raise DirectiveError(f"bad directive value in {match.group(0)!r}") from None
    if "fail" in found and not 400 <= found["fail"] <= 599:
        raise DirectiveError(f"[[fail:{found['fail']}]]: the status must be 400-599")
    return found, _DIRECTIVE.sub("", text).strip()


def split_words(answer: str) -> list[str]:
    """The stream's content deltas: one per word, spaces kept (at least one delta)."""
    return _WORD.findall(answer) or [answer]


def embed(text: str, dimensions: int) -> list[float]:
    """A unit vector derived from a hash of `text`: same text, same vector, in any process."""
    rng = random.Random(hashlib.sha256(text.encode()).digest())
    vector = [rng.gauss(0.0, 1.0) for _ in range(dimensions)]
    norm = math.sqrt(sum(x * x for x in vector)) or 1.0
    return [x / norm for x in vector]


def error_body(status: int, message: str) -> dict:
    """OpenAI's error shape: {"error": {"message", "type", "code"}}."""
    default = ("server_error", f"http_{status}") if status >= 500 else ("invalid_request_error", f"http_{status}")
    kind, code = _ERROR_TYPES.get(status, default)
    return {"error": {"message": message, "type": kind, "code": code}}


# --- the ASGI app ---------------------------------------------------------------------------


class _Exchange:
    """One HTTP request: its body, and a way to sleep that notices the client leaving."""

    def __init__(self, scope, receive, send):
        self.scope, self.receive, self.send = scope, receive, send
        self._disconnect_watch: asyncio.Future | None = None

    async def read_body(self) -> bytes:
        chunks = []
        while True:
            message = await self.receive()
            if message["type"] == "http.disconnect":
                raise _DropConnection()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                return b"".join(chunks)

    async def sleep(self, seconds: float) -> bool:
        """Wait `seconds`; False if the client has disconnected (a long wait then ends early).

        Without this, a benchmark client that gives up would leave the task waiting, and then
        writing into a closed socket (uvicorn silently drops what is sent after a disconnect)."""
        if seconds <= 0:
            return True
        if self._disconnect_watch is None:
            # The body is fully read, so the next message can only be http.disconnect.
            self._disconnect_watch = asyncio.ensure_future(self.receive())
        if seconds < 1:
            # Between chunks: a plain sleep costs a fraction of asyncio.wait, and a client
            # that left is noticed right after it anyway.
            await asyncio.sleep(seconds)
        else:
            await asyncio.wait({self._disconnect_watch}, timeout=seconds)
        return not self._disconnect_watch.done()

    def close(self) -> None:
        if self._disconnect_watch is not None and not self._disconnect_watch.done():
            self._disconnect_watch.cancel()

    async def start(self, status: int, content_type: bytes, extra_headers=()) -> None:
        headers = [(b"content-type", content_type), *extra_headers]
        await self.send({"type": "http.response.start", "status": status, "headers": headers})

    async def json(self, status: int, payload) -> None:
        body = json.dumps(payload, ensure_ascii=False).encode()
        await self.start(status, b"application/json", [(b"content-length", str(len(body)).encode())])
        await self.send({"type": "http.response.body", "body": body})

    async def error(self, status: int, message: str) -> None:
        await self.json(status, error_body(status, message))

    async def fail_as_asked(self, status: int) -> None:
        await self.error(status, f"Fake provider failure {status}, as asked by [[fail:{status}]].")


class ProviderApp:
    """The ASGI application. `requests` is shared with whoever reads it (keep the same list)."""

    def __init__(self, api_key: str = "", chunk_delay: float = 0.0, max_recorded: int | None = None):
        self.api_key = api_key
        self.chunk_delay = chunk_delay
        self.max_recorded = max_recorded
        self.requests: list[dict] = []
        self.routes = {
            ("POST", "/v1/chat/completions"): self._chat,
            ("POST", "/v1/embeddings"): self._embeddings,
            ("POST", "/v1/rerank"): self._rerank,
            ("GET", "/v1/models"): self._models,
        }

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":  # lifespan is switched off; websockets are not served
            return
        exchange = _Exchange(scope, receive, send)
        try:
            await self._dispatch(exchange)
        finally:
            exchange.close()

    async def _dispatch(self, exchange: _Exchange) -> None:
        method, path = exchange.scope["method"], exchange.scope["path"]
        raw = await exchange.read_body()

        if path == "/_requests":  # the control plane for out-of-process use: no auth
            if method == "DELETE":
                self.requests.clear()
                return await exchange.json(200, {"cleared": True})
            return await exchange.json(200, self.requests)

        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in exchange.scope["headers"]}
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        self._record({"method": method, "path": path, "headers": headers, "body": body})

        handler = self.routes.get((method, path))
        if handler is None:
            known = any(p == path for _, p in self.routes)
            return await exchange.error(405 if known else 404, f"{method} {path} is not served here")
        if self.api_key and headers.get("authorization") != f"Bearer {self.api_key}":
            return await exchange.error(401, "Incorrect API key provided.")
        if raw and body is None:
            return await exchange.error(400, "The body is not valid JSON.")
        try:
            await handler(exchange, body if isinstance(body, dict) else {})
        except DirectiveError as exc:
            await exchange.error(400, str(exc))

    def _record(self, entry: dict) -> None:
        self.requests.append(entry)
        # A long benchmark must not grow without bound; tests keep everything (None).
        if self.max_recorded is not None and len(self.requests) > self.max_recorded:
            del self.requests[: len(self.requests) - self.max_recorded]

    # --- endpoints --------------------------------------------------------------------------

    async def _models(self, exchange: _Exchange, body: dict) -> None:
        models = [
            {"id": name, "object": "model", "created": 0, "owned_by": "fake-provider"}
            for name in (*LLM_MODELS, *EMBEDDING_MODELS, *RERANK_MODELS)
        ]
        await exchange.json(200, {"object": "list", "data": models})

    async def _chat(self, exchange: _Exchange, body: dict) -> None:
        messages, model = body.get("messages"), body.get("model")
        if not isinstance(model, str) or not model:
            return await exchange.error(400, "`model` is required.")
        if not isinstance(messages, list) or not messages or not all(isinstance(m, dict) for m in messages):
            return await exchange.error(400, "`messages` must be a non-empty list of objects.")

        last_user = next((m for m in reversed(messages) if m.get("role") == "user"), {})
        directives, text = parse_directives(message_text(last_user))
        if "answer" in directives:
            answer = directives["answer"]
        elif "echo-messages" in directives:
            answer = json.dumps(messages, ensure_ascii=False)
        else:
            answer = f"Answer to: {text}"

        if not await exchange.sleep(directives.get("delay", 0)):
            return
        if "fail" in directives:
            return await exchange.fail_as_asked(directives["fail"])

        usage = None
        if "usage" in directives:
            usage = directives["usage"]
        elif "no-usage" not in directives:
            prompt_tokens = sum(count_words(message_text(m)) for m in messages)
            completion_tokens = max(1, count_words(answer))
            usage = {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            }
        completion_id, created = f"chatcmpl-{uuid.uuid4().hex[:24]}", int(time.time())

        def header(kind: str) -> dict:
            return {"id": completion_id, "object": kind, "created": created, "model": model}

        if not body.get("stream"):
            if "body" in directives:
                return await exchange.json(200, directives["body"])
            response = {
                **header("chat.completion"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": answer},
                        "finish_reason": "stop",
                    }
                ],
            }
            if usage is not None or "usage" in directives:
                response["usage"] = usage
            return await exchange.json(200, response)

        options = body.get("stream_options")
        include_usage = isinstance(options, dict) and options.get("include_usage") is True
        base = header("chat.completion.chunk")
        sent = include_usage and (usage is not None or "usage" in directives)
        await self._stream(exchange, directives, answer, base, usage if sent else _NOT_SENT, include_usage)

    async def _stream(self, exchange, directives, answer, base, usage, include_usage) -> None:
        """Send the answer as SSE: one chunk per word, a finish chunk, the usage, [DONE].

        `base` holds the fields every chunk repeats; `usage` is _NOT_SENT when it is not sent."""

        def event(delta=None, finish_reason=None, **extra) -> bytes:
            choices = [] if delta is None else [
                {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
            ]
            chunk = {**base, "choices": choices, **extra}
            if include_usage and "usage" not in chunk:
                chunk["usage"] = None  # as OpenAI does: every chunk names the field
            return b"data: " + json.dumps(chunk, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"

        def body(data: bytes, more: bool = True) -> dict:
            return {"type": "http.response.body", "body": data, "more_body": more}

        # Content chunks are most of the traffic: encode one around a placeholder once, then
        # splice each word in (encoding a string is far cheaper than encoding the whole chunk).
        head, _, tail = event({"content": _SLOT}).rpartition(_SLOT_JSON)

        # No content-length: uvicorn uses chunked encoding, so a dropped connection is visible
        # to the client as an incomplete body rather than a clean end.
        await exchange.start(200, b"text/event-stream; charset=utf-8", [(b"cache-control", b"no-cache")])
        if not await exchange.sleep(directives.get("first-chunk-delay", 0)):
            return
        chunk_delay = directives.get("chunk-delay", self.chunk_delay)
        cut = directives.get("cut")
        for odd in directives.get("chunks", []):
            await exchange.send(body(b"data: " + json.dumps(odd, ensure_ascii=False).encode() + b"\n\n"))

        for index, word in enumerate(split_words(answer)):
            if cut is not None and index >= cut:
                raise _DropConnection()
            if index == 0:
                await exchange.send(body(event({"role": "assistant", "content": word})))
                continue
            if not await exchange.sleep(chunk_delay):
                return
            await exchange.send(body(head + json.dumps(word, ensure_ascii=False).encode() + tail))
        if cut is not None:
            raise _DropConnection()  # N was at least the number of words: cut before the finish

        await exchange.send(body(event({}, "stop")))
        if usage is not _NOT_SENT:
            await exchange.send(body(event(usage=usage)))
        await exchange.send(body(b"data: [DONE]\n\n", more=False))

    async def _embeddings(self, exchange: _Exchange, body: dict) -> None:
        inputs = body.get("input")
        if isinstance(inputs, str):
            inputs = [inputs]
        if not isinstance(inputs, list) or not inputs or not all(isinstance(i, str) for i in inputs):
            return await exchange.error(400, "`input` must be a string or a non-empty list of strings.")
        dimensions = body.get("dimensions") or DEFAULT_DIMENSIONS
        if not isinstance(dimensions, int) or not 1 <= dimensions <= 8192:
            return await exchange.error(400, "`dimensions` must be an integer from 1 to 8192.")

        directives = {}
        for text in inputs:
            directives.update(parse_directives(text)[0])
        if not await exchange.sleep(directives.get("delay", 0)):
            return
        if "fail" in directives:
            return await exchange.fail_as_asked(directives["fail"])

        as_base64 = body.get("encoding_format") == "base64"  # the openai SDK may ask for it
        data = []
        for index, text in enumerate(inputs):
            vector = embed(text, dimensions)
            if as_base64:
                vector = base64.b64encode(struct.pack(f"<{dimensions}f", *vector)).decode()
            data.append({"object": "embedding", "index": index, "embedding": vector})
        tokens = sum(count_words(text) for text in inputs)
        await exchange.json(200, {
            "object": "list",
            "data": data,
            "model": body.get("model", EMBEDDING_MODELS[0]),
            "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
        })


    async def _rerank(self, exchange: _Exchange, body: dict) -> None:
        query, documents = body.get("query"), body.get("documents")
        if not isinstance(query, str) or not query.strip():
            return await exchange.error(400, "`query` must be a non-empty string.")
        if isinstance(documents, list):  # Jina also accepts [{"text": ...}]
            documents = [d.get("text") if isinstance(d, dict) else d for d in documents]
        if not isinstance(documents, list) or not all(isinstance(d, str) for d in documents):
            return await exchange.error(400, "`documents` must be a list of strings.")
        top_n = body.get("top_n", len(documents))
        if isinstance(top_n, bool) or not isinstance(top_n, int) or top_n < 1:
            return await exchange.error(400, "`top_n` must be a positive integer.")

        directives, text = parse_directives(query)
        if not await exchange.sleep(directives.get("delay", 0)):
            return
        if "fail" in directives:
            return await exchange.fail_as_asked(directives["fail"])

        wanted = set(_RERANK_WORD.findall(text.lower()))
        scores = []
        for index, document in enumerate(documents):
            found = wanted & set(_RERANK_WORD.findall(document.lower()))
            scores.append((len(found) / len(wanted) if wanted else 0.0, index))
        scores.sort(key=lambda pair: (-pair[0], pair[1]))
        results = [
            {"index": index, "relevance_score": score, "document": {"text": documents[index]}}
            for score, index in scores[:top_n]
        ]
        tokens = count_words(text) * len(documents) + sum(count_words(d) for d in documents)
        await exchange.json(200, {
            "id": f"rerank-{uuid.uuid4().hex[:24]}",
            "model": body.get("model", RERANK_MODELS[0]),
            "results": results,
            "usage": {"total_tokens": tokens},
        })


# --- running it -----------------------------------------------------------------------------


class FakeProvider:
    """The provider served by uvicorn in a background thread of this process."""

    def __init__(self, api_key: str = "", *, host: str = "127.0.0.1", port: int = 0, chunk_delay: float = 0.0):
        self.app = ProviderApp(api_key=api_key, chunk_delay=chunk_delay)
        self.api_key, self.host, self.port = api_key, host, port
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None

    @property
    def requests(self) -> list[dict]:
        """Each request received: {"method", "path", "headers" (lower-cased names), "body"}."""
        return self.app.requests

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def base_url(self) -> str:
        """What an OpenAI client takes as its base URL."""
        return f"{self.url}/v1"

    def reset(self) -> None:
        self.app.requests.clear()

    def start(self) -> str:
        """Serve on a free port (unless one was given); returns `base_url` once it listens."""
        # Binding the socket here, not in uvicorn, gives us the port with no race.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.app,
            log_config=None,  # leave the test process's logging alone
            log_level="warning",
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,  # stop() must not wait for a [[delay:…]] to elapse
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [sock]}, name="fake-provider", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake provider did not start")
            time.sleep(0.01)
        self._socket = sock  # uvicorn listens on this very socket: close it only after stop()
        return self.base_url

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
            self._thread.join(timeout=10)
            self._socket.close()
            self._server = self._thread = self._socket = None

    def __enter__(self) -> "FakeProvider":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()


def _raise_open_files_limit() -> None:
    """Each open stream is a socket; the default soft limit (often 1024) is too low."""
    try:
        import resource

        soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
        wanted = hard if hard != resource.RLIM_INFINITY else 65536
        if soft != resource.RLIM_INFINITY and soft < wanted:
            resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    except (ImportError, ValueError, OSError):
        pass


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m tests.fake_provider", description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--api-key", default="", help="require `Authorization: Bearer KEY`")
    parser.add_argument("--chunk-delay", type=float, default=0.0, help="seconds between stream chunks")
    parser.add_argument("--max-recorded", type=int, default=1000, help="recorded requests kept for /_requests")
    args = parser.parse_args(argv)

    _raise_open_files_limit()
    app = ProviderApp(api_key=args.api_key, chunk_delay=args.chunk_delay, max_recorded=args.max_recorded)
    print(f"fake provider: http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(
        app,
        host=args.host,
        port=args.port,
        log_level="warning",
        access_log=False,  # an access line per request would cost more CPU than the answer
        lifespan="off",
        backlog=4096,  # a benchmark opens its 1000+ connections at once
        timeout_graceful_shutdown=1,
    )


if __name__ == "__main__":
    main()
