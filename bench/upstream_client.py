"""Which HTTP client should call the model provider: CPU per upstream call, client by client.

    .venv/bin/pip install -e '.[dev,bench]'        # aiohttp (bench extra only)
    .venv/bin/python bench/upstream_client.py [--quick] [--rounds 5] [--calls 2000] [--words 20]

Method. The script starts the local provider (`python -m tests.fake_provider`) and, in its own
process on uvloop (the loop uvicorn runs our server on), calls it with each client in turn:

  * httpx.AsyncClient — what chat/llm.py uses today: `post(json=...)` for the non-stream call,
    `send(stream=True)` + `aiter_lines()` for the stream, one client per loop, httpx.Timeout;
  * httpx.AsyncClient over an asyncio network backend — the same client whose httpcore pool
    reads the socket through asyncio streams instead of anyio (no cancel scope per read;
    the transport's pool is swapped in: a measurement, not a supported configuration);
  * httpcore.AsyncConnectionPool — httpx's own transport layer called directly (no httpx
    Request/Response models, URL parsing, header classes or decoders), anyio backend;
  * httpcore.AsyncConnectionPool over the asyncio network backend;
  * httpx2.AsyncClient — pydantic's httpx fork, already installed with the openai SDK
    (left out when it is not installed);
  * aiohttp.ClientSession — `post(json=...)`, `read()`; the stream read line by line from
    `response.content`;
  * raw asyncio streams — a minimal HTTP/1.1 exchange written for this benchmark: the floor
    of what Python can do, not a candidate.

Two kinds of call: (a) the non-stream chat completion (the request body encoded by the client,
the answer's JSON decoded, its text taken), and (b) the stream relay: the same request with
`stream: true`, the SSE read line by line, every `data:` chunk decoded with json.loads and its
delta kept, until `[DONE]` — what chat/llm.py's AnswerStream does (a --words word answer,
no delay: about words + 3 events). Each at concurrency 1 and 32 (32 tasks sharing one client).
Every call's text is checked against the expected answer.

The figure is CPU of this process per call (time.process_time, i.e. getrusage: the client's
own work, including the event loop's, none of the provider's), and calls/s. Rounds are
interleaved — every client takes its turn in each round, in a rotated order — so that a burst
of foreign load falls on all of them alike; the load averages are printed.
"""

import argparse
import asyncio
import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone

import httpcore
import httpx
from httpcore._utils import is_socket_readable

from chat_overhead import (ROOT, client_loop_factory, free_port, http_status, interrupt, percentile,
                           raise_open_files_limit)

PYTHON = sys.executable
PROVIDER_KEY = "bench-provider-key"
MODEL = "bench-llm"
QUESTION = "How fast is the relay?"
MAX_CONNECTIONS = 100  # chat/llm.py's defaults (PROVIDER_MAX_CONNECTIONS / _KEEPALIVE)
CONNECT_TIMEOUT, READ_TIMEOUT = 5.0, 120.0


# --- what every client does with the answer -------------------------------------------------


class Relay:
    """The stream's state: chat/llm.py's `_provider_deltas` + `_read_chunk`, line by line."""

    __slots__ = ("pieces", "usage", "done", "chunks")

    def __init__(self):
        self.pieces, self.usage, self.done, self.chunks = [], None, False, 0

    def line(self, line: str) -> None:
        if not line.startswith("data:"):
            return  # comments, event names, blank separators
        payload = line[5:].strip()
        if payload == "[DONE]":
            self.done = True
            return
        self.chunks += 1
        chunk = json.loads(payload)
        usage = chunk.get("usage")
        if isinstance(usage, dict) and "prompt_tokens" in usage:
            self.usage = (int(usage["prompt_tokens"]), int(usage.get("completion_tokens", 0)))
        choices = chunk.get("choices") or []
        if choices and isinstance(choices[0], dict):
            piece = (choices[0].get("delta") or {}).get("content")
            if piece:
                self.pieces.append(piece)

    def text(self) -> str:
        if not self.done:
            raise RuntimeError("the stream ended before [DONE]")
        return "".join(self.pieces)


class Lines:
    """Bytes in, complete lines out (for the clients that hand out raw chunks)."""

    __slots__ = ("rest",)

    def __init__(self):
        self.rest = b""

    def feed(self, data: bytes, relay: Relay) -> None:
        lines = (self.rest + data).split(b"\n")
        self.rest = lines.pop()
        for line in lines:
            relay.line(line.decode().rstrip("\r"))


def completion_text(content: bytes) -> str:
    return json.loads(content)["choices"][0]["message"]["content"]


# --- an asyncio network backend for httpcore (no anyio cancel scope per read) -----------------


class AsyncioStream(httpcore.AsyncNetworkStream):
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.reader, self.writer = reader, writer

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        try:
            if timeout is None:
                return await self.reader.read(max_bytes)
            async with asyncio.timeout(timeout):
                return await self.reader.read(max_bytes)
        except TimeoutError as exc:
            raise httpcore.ReadTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ReadError(str(exc)) from exc

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if not buffer:
            return
        try:
            self.writer.write(buffer)
            if timeout is None:
                await self.writer.drain()
            else:
                async with asyncio.timeout(timeout):
                    await self.writer.drain()
        except TimeoutError as exc:
            raise httpcore.WriteTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.WriteError(str(exc)) from exc

    async def aclose(self) -> None:
        self.writer.close()

    def get_extra_info(self, info: str):
        sock = self.writer.get_extra_info("socket")
        if info == "is_readable":
            return is_socket_readable(sock)
        if info == "socket":
            return sock
        if info in ("ssl_object", "client_addr", "server_addr"):
            return self.writer.get_extra_info({"client_addr": "sockname", "server_addr": "peername"}.get(info, info))
        return None


class AsyncioBackend(httpcore.AsyncNetworkBackend):
    async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
        try:
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(host, port, limit=1 << 20)
        except TimeoutError as exc:
            raise httpcore.ConnectTimeout(str(exc)) from exc
        except OSError as exc:
            raise httpcore.ConnectError(str(exc)) from exc
        return AsyncioStream(reader, writer)

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


# --- the clients ----------------------------------------------------------------------------


class HttpxClient:
    """As chat/llm.py calls the provider."""

    def __init__(self, module=httpx, *, name="httpx.AsyncClient", asyncio_backend=False):
        self.name, self.module = name, module
        limits = module.Limits(max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS)
        self.client = module.AsyncClient(limits=limits)
        if asyncio_backend:
            transport = self.client._transport
            transport._pool = httpcore.AsyncConnectionPool(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS,
                network_backend=AsyncioBackend())
        self.timeout = module.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT)

    async def complete(self, url, body, headers) -> str:
        response = await self.client.post(url, json=body, headers=headers, timeout=self.timeout)
        if response.status_code != 200:
            raise RuntimeError(f"HTTP {response.status_code}")
        return completion_text(response.content)

    async def relay(self, url, body, headers) -> Relay:
        request = self.client.build_request("POST", url, json=body, headers=headers, timeout=self.timeout)
        response = await self.client.send(request, stream=True)
        relay = Relay()
        try:
            if response.status_code != 200:
                raise RuntimeError(f"HTTP {response.status_code}")
            async for line in response.aiter_lines():
                relay.line(line)
                if relay.done:
                    break
        finally:
            await response.aclose()
        return relay

    async def aclose(self):
        await self.client.aclose()


class HttpcoreClient:
    """httpx's transport layer without httpx: bytes in, bytes out."""

    def __init__(self, *, asyncio_backend=False):
        self.name = "httpcore pool" + (" + asyncio backend" if asyncio_backend else "")
        self.pool = httpcore.AsyncConnectionPool(
            max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_CONNECTIONS,
            network_backend=AsyncioBackend() if asyncio_backend else None)
        self.extensions = {"timeout": {"connect": CONNECT_TIMEOUT, "read": READ_TIMEOUT,
                                       "write": READ_TIMEOUT, "pool": READ_TIMEOUT}}

    def _request(self, url, body, headers):
        data = json.dumps(body).encode()
        host = url.split("/")[2]
        head = [(b"Host", host.encode()), (b"Content-Type", b"application/json"),
                (b"Content-Length", str(len(data)).encode())]
        head += [(k.encode(), v.encode()) for k, v in headers.items()]
        return {"headers": head, "content": data, "extensions": self.extensions}

    async def complete(self, url, body, headers) -> str:
        response = await self.pool.request("POST", url, **self._request(url, body, headers))
        if response.status != 200:
            raise RuntimeError(f"HTTP {response.status}")
        return completion_text(response.content)

    async def relay(self, url, body, headers) -> Relay:
        relay, lines = Relay(), Lines()
        async with self.pool.stream("POST", url, **self._request(url, body, headers)) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            async for data in response.aiter_stream():
                lines.feed(data, relay)
                if relay.done:
                    break
        return relay

    async def aclose(self):
        await self.pool.aclose()


class AiohttpClient:
    name = "aiohttp.ClientSession"

    def __init__(self):
        import aiohttp

        self.session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=MAX_CONNECTIONS, limit_per_host=MAX_CONNECTIONS),
            timeout=aiohttp.ClientTimeout(total=None, sock_connect=CONNECT_TIMEOUT, sock_read=READ_TIMEOUT))

    async def complete(self, url, body, headers) -> str:
        async with self.session.post(url, json=body, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            return completion_text(await response.read())

    async def relay(self, url, body, headers) -> Relay:
        relay = Relay()
        async with self.session.post(url, json=body, headers=headers) as response:
            if response.status != 200:
                raise RuntimeError(f"HTTP {response.status}")
            async for line in response.content:  # one line at a time
                relay.line(line.decode().rstrip("\r\n"))
                if relay.done:
                    break
        return relay

    async def aclose(self):
        await self.session.close()


class RawClient:
    """The floor: keep-alive HTTP/1.1 on asyncio streams, only what the provider sends
    (Content-Length bodies, chunked streams). Not a candidate: no pool limits, no timeouts,
    no redirects, no TLS, no error handling worth the name."""

    name = "raw asyncio streams (floor)"

    def __init__(self):
        self.idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def _exchange(self, url, body, headers):
        host = url.split("/")[2]
        data = json.dumps(body).encode()
        head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
        request = (f"POST /{url.split('/', 3)[3]} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
                   f"{head}Content-Length: {len(data)}\r\n\r\n").encode() + data
        # The provider (uvicorn) closes a connection idle for 5 s: skip those it closed.
        while self.idle:
            reader, writer = self.idle.pop()
            if not reader.at_eof():
                break
            writer.close()
        else:
            name, port = host.split(":")
            reader, writer = await asyncio.open_connection(name, int(port), limit=1 << 20)
        writer.write(request)
        status_and_headers = (await reader.readuntil(b"\r\n\r\n")).lower()
        return reader, writer, status_and_headers

    async def complete(self, url, body, headers) -> str:
        reader, writer, head = await self._exchange(url, body, headers)
        length = int(head.split(b"\r\ncontent-length:", 1)[1].split(b"\r\n", 1)[0])
        content = await reader.readexactly(length)
        self.idle.append((reader, writer))
        if head[9:12] != b"200":
            raise RuntimeError(f"HTTP {head[9:12].decode()}")
        return completion_text(content)

    async def relay(self, url, body, headers) -> Relay:
        reader, writer, head = await self._exchange(url, body, headers)
        if head[9:12] != b"200" or b"transfer-encoding: chunked" not in head:
            raise RuntimeError("not a chunked 200")
        relay, lines = Relay(), Lines()
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                break
            lines.feed((await reader.readexactly(size + 2))[:-2], relay)
        self.idle.append((reader, writer))
        return relay

    async def aclose(self):
        for _, writer in self.idle:
            writer.close()


def make_clients(only: list[str] | None) -> list:
    makers = [
        lambda: HttpxClient(),
        lambda: HttpxClient(name="httpx.AsyncClient + asyncio backend", asyncio_backend=True),
        lambda: HttpcoreClient(),
        lambda: HttpcoreClient(asyncio_backend=True),
    ]
    if importlib.util.find_spec("httpx2"):
        import httpx2

        makers.append(lambda: HttpxClient(httpx2, name="httpx2.AsyncClient"))
    if importlib.util.find_spec("aiohttp"):
        makers.append(AiohttpClient)
    else:
        print("aiohttp is not installed (pip install -e '.[bench]'): left out", flush=True)
    makers.append(RawClient)
    clients = [make() for make in makers]
    return [c for c in clients if not only or any(o.lower() in c.name.lower() for o in only)]


# --- load and figures -------------------------------------------------------------------------


async def run_calls(client, kind: str, url: str, body: dict, headers: dict, expected: str, calls: int,
                    concurrency: int) -> tuple[list[float], int, float, float]:
    """`calls` calls on `concurrency` tasks; returns latencies (s), errors, wall s, CPU s."""
    latencies, errors, left = [], 0, calls
    call = client.complete if kind == "non-stream" else client.relay

    async def worker():
        nonlocal errors, left
        while left > 0:
            left -= 1
            start = time.perf_counter()
            try:
                got = await call(url, body, headers)
                text = got if kind == "non-stream" else got.text()
                if text != expected:
                    raise RuntimeError(f"unexpected answer {text[:60]!r}")
            except Exception as exc:  # noqa: BLE001 — counted and shown, the run goes on
                errors += 1
                if errors == 1:
                    print(f"    {client.name}: {type(exc).__name__}: {exc}", flush=True)
            latencies.append(time.perf_counter() - start)

    cpu0, wall0 = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors, time.perf_counter() - wall0, time.process_time() - cpu0


async def run(args, port: int) -> None:
    url = f"http://127.0.0.1:{port}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {PROVIDER_KEY}"}
    answer = " ".join(f"w{i}" for i in range(args.words))
    bodies = {
        "non-stream": {"model": MODEL, "messages": [{"role": "user", "content": QUESTION}],
                       "temperature": 0.7, "max_tokens": 2000, "stream": False},
        "stream": {"model": MODEL, "messages": [{"role": "user", "content": f"[[answer:{answer}]] {QUESTION}"}],
                   "temperature": 0.7, "max_tokens": 2000, "stream": True, "stream_options": {"include_usage": True}},
    }
    expected = {"non-stream": f"Answer to: {QUESTION}", "stream": answer}
    clients = make_clients(args.only)
    print("clients: " + "; ".join(c.name for c in clients) + "\n", flush=True)
    # Warm-up: connections, imports, first-call paths; and a check that every client works.
    for client in clients:
        for kind in ("non-stream", "stream"):
            _, errors, _, _ = await run_calls(client, kind, url, bodies[kind], headers, expected[kind], 100, 8)
            if errors:
                raise SystemExit(f"{client.name} failed its warm-up ({kind})")
    table = []
    for kind in ("non-stream", "stream"):
        for concurrency in (1, 32):
            per_round = max(concurrency, args.calls // args.rounds)
            got = {c.name: ([], 0, 0.0, 0.0) for c in clients}
            load = []
            for r in range(args.rounds):
                order = clients[r % len(clients):] + clients[:r % len(clients)]
                for client in order:
                    lat, err, wall, cpu = await run_calls(client, kind, url, bodies[kind], headers, expected[kind],
                                                          per_round, concurrency)
                    a = got[client.name]
                    got[client.name] = (a[0] + lat, a[1] + err, a[2] + wall, a[3] + cpu)
                load.append(os.getloadavg()[0])
            base = None
            for client in clients:
                lat, err, wall, cpu = got[client.name]
                n = len(lat)
                cpu_ms = cpu / n * 1000
                base = base or cpu_ms
                row = (f"{kind}, c={concurrency}", client.name, n, err, n / wall, cpu_ms, cpu_ms / base,
                       percentile([x * 1000 for x in lat], 50), percentile([x * 1000 for x in lat], 99))
                table.append(row)
                print(f"  {row[0]:<16} {row[1]:<38} n={n:<5} err={err} {row[4]:7.0f} calls/s  "
                      f"CPU {cpu_ms:.3f} ms/call ({row[6]:.2f} x httpx)  p50 {row[7]:.2f} ms", flush=True)
            print(f"    load average during the rounds: {min(load):.2f}–{max(load):.2f}", flush=True)
    for client in clients:
        await client.aclose()

    chunks = args.words + 3  # role+first word ... last word, finish, usage (the [DONE] line aside)
    print("\n| case | client | calls | errors | calls/s | CPU ms/call | CPU vs httpx.AsyncClient | p50 ms | p99 ms |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|")
    for case, name, n, err, rate, cpu_ms, rel, p50, p99 in table:
        print(f"| {case} | {name} | {n} | {err} | {rate:.0f} | {cpu_ms:.3f} | {rel:.2f} | {p50:.2f} | {p99:.2f} |")
    print(f"\nstream calls carry {args.words} words = about {chunks} SSE events each; "
          "CPU per event = CPU per call / events.")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts (~30 s)")
    parser.add_argument("--calls", type=int, help="calls per client per case (default 2000; --quick 300)")
    parser.add_argument("--rounds", type=int, default=5, help="interleaved rounds per case (default 5)")
    parser.add_argument("--words", type=int, default=20, help="words in a streamed answer (default 20)")
    parser.add_argument("--only", action="append", help="only clients whose name contains this (repeatable)")
    args = parser.parse_args(argv)
    args.calls = args.calls or (300 if args.quick else 2000)
    signal.signal(signal.SIGTERM, interrupt)  # `kill PID` still stops the provider
    raise_open_files_limit()
    cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
    print(f"upstream client benchmark — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {os.cpu_count()} cores ({cpu}), load average before: {os.getloadavg()[0]:.2f}")
    versions = []
    for dist in ("httpx", "httpcore", "anyio", "httpx2", "aiohttp", "uvloop"):
        with contextlib.suppress(Exception):
            import importlib.metadata

            versions.append(f"{dist} {importlib.metadata.version(dist)}")
    print("; ".join(versions))
    print(f"{args.calls} calls per client per case in {args.rounds} interleaved rounds; uvloop; "
          f"CPU = this process's CPU time per call (time.process_time)\n", flush=True)
    port = free_port()
    provider = subprocess.Popen([PYTHON, "-m", "tests.fake_provider", "--port", str(port), "--api-key", PROVIDER_KEY],
                                cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while http_status(port, "GET", "/v1/models", {"Authorization": f"Bearer {PROVIDER_KEY}"}) != 200:
            if provider.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the provider did not start")
            time.sleep(0.1)
        with asyncio.Runner(loop_factory=client_loop_factory()) as runner:
            runner.run(run(args, port))
    finally:
        provider.terminate()
        provider.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
