"""What our chat-completions endpoint adds on top of the model provider it relays to.

    .venv/bin/python bench/chat_overhead.py [--quick] [--workers N] [--peer litellm]   # SQLite in a temp file
    .venv/bin/python -m tests.with_postgres .venv/bin/python bench/chat_overhead.py   # PostgreSQL 18

Method. The script starts everything itself: the local OpenAI-compatible provider
(`python -m tests.fake_provider`), a database for the server (`manage.py migrate` on
DATABASE_URL, or on a fresh SQLite file in a temporary folder when it is unset), the demo team,
app and app key (`manage.py bootstrap_demo`), and the server as a real deployment runs it
(`uvicorn config.asgi:application --no-access-log`, `--workers 1` = "one instance"), with one
LLM `bench-llm` pointing at the provider, no rate limit and WARNING logs. Each closed-loop
case runs against the provider directly and through our server (`/api/v1/chat/completions`
with the app key, which stores every turn in the database), in alternating short rounds
(--rounds; direct, ours, [peer], direct, ours, …) so that a burst of foreign load on the shared
cores hits every target alike. The difference is what we add: "added p50" is
p50(ours) - p50(direct), likewise for p99.

Peer (--peer litellm): the LiteLLM proxy (`litellm[proxy]` from PyPI, installed on first use
into its own venv under .bench-venvs/litellm, with httptools so that it runs on the same
uvloop/httptools stack as our uvicorn), routed to the same provider, one worker, no database,
no callbacks, no spend or error logs, ERROR logs, a master key checked on every request. It
takes its own rounds in the same interleaving, and every run prints our CPU per request and
our added latency as a ratio to LiteLLM's (a stateless relay: it stores nothing, we store
every turn).

Cases:
  * non-stream, closed loop at concurrency 1 and 32: requests/s, latency p50/p99;
  * the same at concurrency 32 WITH a chatId (history read and appended; one chat per client
    connection, as a user does not send two questions at once to one chat);
  * stream, concurrency 1 and 32: time to the first `data:` event that carries content;
  * open streams: N streams opened at once (slow answers: one word every --chunk-delay s, so
    each stays open for words x delay s); per-stream time to first chunk, how many end with
    [DONE] and how many fail; then, while the N are held open, sequential probe streams
    measure the first-chunk delay a new client sees, and /proc tells how much of a core the
    server spends just relaying the held streams. N grows through --streams (1000, 1500)
    while every stream of the previous level completed. The burst's start phase (sending the
    N until the last first chunk) is accounted apart: each party's CPU per stream start, our
    PostgreSQL's apart from foreign load, and with --burst-profile FILE py-spy's samples of
    the server over that phase alone. --burst-workers N restarts our server with N worker
    processes for these levels (e.g. one per core, as docs/production.md runs it), after the
    closed-loop cases have measured the --workers one.

The load generator is a minimal HTTP/1.1 client on raw asyncio streams (uvloop when installed,
keep-alive, requests pre-encoded): about as cheap on CPU as a Python client gets, which matters
because the client, the provider, the server (and PostgreSQL) all share the machine's cores. The
figures are therefore pessimistic. CPU time per request of each party is read from /proc, so one
can see where the cores went; "other" is everything else that ran (PostgreSQL, and any foreign
load: check the load averages printed before and after).

The CPU column is ms of CPU per request of: this client / the provider / the relay under test
(our server, or LiteLLM) / everything else.

Linux only (/proc, RLIMIT_NOFILE). Point DATABASE_URL only at a throwaway database: the run adds
chats and re-issues the demo keys (bootstrap_demo revokes the previous ones).
"""

import argparse
import asyncio
import contextlib
import http.client
import importlib.util
import json
import math
import os
import re
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import profile_shares
from peers import litellm as litellm_peer

ROOT = Path(__file__).resolve().parent.parent
PEER_VENVS = ROOT / ".bench-venvs"
PYTHON = sys.executable
PROVIDER_KEY = "bench-provider-key"
MODEL = "bench-llm"
QUESTION = "How fast is the relay?"
CLK_TCK = os.sysconf("SC_CLK_TCK")

# A streamed chunk that carries text: `"content":"<at least one character>`.
CONTENT = re.compile(rb'"content":\s*"[^"]')
CONTENT_LENGTH = re.compile(rb"\r\ncontent-length:\s*(\d+)")


# --- processes ------------------------------------------------------------------------------


def raise_open_files_limit() -> int:
    """Every open stream is one socket in the client, two in the server and one in the
    provider; the usual soft limit (1024) is far too low. Subprocesses inherit the limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    wanted = hard if hard != resource.RLIM_INFINITY else 65536
    if soft != resource.RLIM_INFINITY and soft < wanted:
        resource.setrlimit(resource.RLIMIT_NOFILE, (wanted, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def http_status(port: int, method: str, path: str, headers: dict | None = None) -> int | None:
    """Status of one plain request, or None while nothing listens yet."""
    try:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        conn.request(method, path, headers=headers or {})
        status = conn.getresponse().status
        conn.close()
        return status
    except OSError:
        return None


class Stack:
    """The provider, the database and the server, started in order and always torn down."""

    def __init__(self, args):
        self.args = args
        self.folder = Path(tempfile.mkdtemp(prefix="chat-bench-"))
        self.procs: list[subprocess.Popen] = []
        self.provider_port = free_port()
        self.server_port = free_port()
        self.peer_port = free_port()
        self.peer = args.peer  # "litellm" or None
        self.peer_version = ""
        self.database_url = os.environ.get("DATABASE_URL") or f"sqlite:///{self.folder / 'bench.sqlite3'}"
        self.app_key = ""

    @property
    def database(self) -> str:
        return "PostgreSQL" if self.database_url.startswith("postgres") else "SQLite"

    def spawn(self, name: str, argv: list[str], env: dict) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")
        # A session of its own, so teardown can signal the process group (uvicorn's workers).
        proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        log.close()  # the child has its own copy of the descriptor
        proc.bench_name = name
        self.procs.append(proc)
        return proc

    def wait_ready(self, proc: subprocess.Popen, check, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while not check():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{proc.bench_name} did not start:\n{self.log_tail(proc.bench_name)}")
            time.sleep(0.1)

    def log_tail(self, name: str, lines: int = 30) -> str:
        path = self.folder / f"{name}.log"
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:]) if path.exists() else ""

    def start(self) -> None:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        provider = self.spawn("provider", [
            PYTHON, "-m", "tests.fake_provider", "--port", str(self.provider_port), "--api-key", PROVIDER_KEY,
        ], env)
        auth = {"Authorization": f"Bearer {PROVIDER_KEY}"}
        self.wait_ready(provider, lambda: http_status(self.provider_port, "GET", "/v1/models", auth) == 200)

        server_env = {
            **env,
            "DATABASE_URL": self.database_url,
            "AI_MODELS": json.dumps([{
                "name": MODEL, "type": "llm", "baseUrl": f"http://127.0.0.1:{self.provider_port}/v1",
                "apiKey": PROVIDER_KEY, "timeout": 120,
            }]),
            "DEFAULT_LLM_MODEL": MODEL,
            "API_KEY_RATE": "",  # measure the relay, not the rate limiter
            "LOG_LEVEL": "WARNING",
            "DEBUG": "false",
        }
        manage = [PYTHON, "manage.py"]
        subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=server_env, check=True)
        demo = subprocess.run([*manage, "bootstrap_demo"], cwd=ROOT, env=server_env, check=True,
                              capture_output=True, text=True).stdout
        self.app_key = re.search(r"app key:\s+(fastgpt-\S+)", demo).group(1)

        if self.peer == "litellm":
            venv = litellm_peer.ensure_venv(Path(self.args.peer_venv or PEER_VENVS / "litellm"))
            self.peer_version = litellm_peer.version(venv)
            argv, peer_env = litellm_peer.command(
                venv, self.folder, port=self.peer_port, provider_url=f"http://127.0.0.1:{self.provider_port}/v1",
                provider_key=PROVIDER_KEY, model=MODEL, workers=self.args.workers)
            peer = self.spawn("peer", argv, peer_env)
            peer_auth = {"Authorization": f"Bearer {litellm_peer.MASTER_KEY}"}
            self.wait_ready(peer, lambda: http_status(self.peer_port, "GET", "/v1/models", peer_auth) == 200, 180)

        self.server_env = server_env
        self.start_server(self.args.workers)

    def start_server(self, workers: int) -> None:
        server = self.spawn("server", [
            PYTHON, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
            "--port", str(self.server_port), "--workers", str(workers), "--no-access-log",
            "--log-level", "warning", *self.args.server_arg,
        ], self.server_env)
        # GET on the chat endpoint answers 405 without touching the database: "it serves".
        self.wait_ready(server, lambda: http_status(self.server_port, "GET", "/api/v1/chat/completions") == 405)
        if workers > 1:
            time.sleep(2)  # the first worker answered; give the others time to import Django too

    def restart_server(self, workers: int) -> None:
        """Our server again, on the same port and database, with ``workers`` processes."""
        [server] = [proc for proc in self.procs if proc.bench_name == "server"]
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
        self.procs.remove(server)
        self.start_server(workers)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def pids(self, name: str) -> list[int]:
        """The process and its descendants (uvicorn --workers N forks its workers)."""
        return [pid for p in self.procs if p.bench_name == name for pid in process_tree(p.pid)]


# --- /proc accounting ---------------------------------------------------------------------


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                stat = Path(f"/proc/{entry}/stat").read_text()
                ppid = int(stat.rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime + stime
    return total / CLK_TCK


def machine_cpu() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine since boot, all cores."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return (sum(values[:8]) - idle) / CLK_TCK, sum(values[:8]) / CLK_TCK


def open_sockets(pid: int) -> int:
    """How many sockets a process holds (its share of the open streams)."""
    count = 0
    with contextlib.suppress(OSError):
        for fd in os.listdir(f"/proc/{pid}/fd"):
            with contextlib.suppress(OSError):
                count += os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:")
    return count


def memory_and_threads(pids: list[int]) -> tuple[float, int]:
    rss_kb, threads = 0, 0
    for pid in pids:
        with contextlib.suppress(OSError):
            for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    rss_kb += int(line.split()[1])
                elif line.startswith("Threads:"):
                    threads += int(line.split()[1])
    return rss_kb / 1024, threads


CPU_KEYS = ("client", "provider", "server", "peer", "busy", "total", "database")


def database_cpu_seconds() -> float:
    """CPU of the PostgreSQL cluster tests/with_postgres.py started for this run (found by its
    data directory's postmaster.pid): its live processes, plus the postmaster's reaped children
    (backends that have exited). NaN when there is none (SQLite, or an outside server). Kept
    apart from "other", so foreign load on a shared machine is not counted as ours."""
    pgdata = os.environ.get("PGSERVER_PGDATA")
    try:
        postmaster = int(Path(pgdata, "postmaster.pid").read_text().split("\n", 1)[0])
        fields = Path(f"/proc/{postmaster}/stat").read_text().rsplit(")", 1)[1].split()
    except (TypeError, OSError, ValueError):
        return math.nan
    reaped = (int(fields[13]) + int(fields[14])) / CLK_TCK  # cutime + cstime
    return cpu_seconds(process_tree(postmaster)) + reaped


@dataclass
class CpuSnapshot:
    client: float
    provider: float
    server: float
    peer: float
    busy: float
    total: float
    database: float

    @classmethod
    def take(cls, stack: Stack) -> "CpuSnapshot":
        busy, total = machine_cpu()
        return cls(time.process_time(), cpu_seconds(stack.pids("provider")), cpu_seconds(stack.pids("server")),
                   cpu_seconds(stack.pids("peer")), busy, total, database_cpu_seconds())

    def since(self, before: "CpuSnapshot") -> dict:
        d = {k: getattr(self, k) - getattr(before, k) for k in CPU_KEYS}
        # Everything else that ran: PostgreSQL (when used), and anything foreign on the machine.
        d["other"] = max(0.0, d["busy"] - d["client"] - d["provider"] - d["server"] - d["peer"])
        # Of which our PostgreSQL (NaN without one); the rest is foreign load.
        d["foreign"] = max(0.0, d["other"] - d["database"]) if not math.isnan(d["database"]) else math.nan
        return d


def add_cpu(total: dict, part: dict) -> dict:
    return {k: total.get(k, 0.0) + v for k, v in part.items()}


# --- a minimal HTTP/1.1 client --------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    name: str  # "direct", "ours" or the peer's name ("litellm")
    port: int
    path: str
    token: str

    def request(self, body: dict) -> bytes:
        """Encoded once per distinct body: the client must spend as little CPU as it can."""
        data = json.dumps(body, separators=(",", ":")).encode()
        head = (
            f"POST {self.path} HTTP/1.1\r\nHost: 127.0.0.1:{self.port}\r\n"
            f"Authorization: Bearer {self.token}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        )
        return head.encode() + data


@dataclass
class Result:
    ok: bool
    latency: float  # request written -> response complete, seconds
    first_chunk: float | None = None  # streams: -> first event carrying content
    error: str = ""


class Connection:
    """One keep-alive connection. Understands exactly what the two servers send: a body with
    Content-Length, or a chunked body (one SSE event per chunk, as uvicorn sends them)."""

    def __init__(self, target: Target):
        self.target = target
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> "Connection":
        self.reader, self.writer = await asyncio.open_connection("127.0.0.1", self.target.port, limit=1 << 20)
        return self

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            self.writer = None

    async def exchange(self, payload: bytes, on_first_chunk=None) -> Result:
        start = time.perf_counter()
        try:
            if self.writer is None:
                await self.open()
            self.writer.write(payload)
            head = (await self.reader.readuntil(b"\r\n\r\n")).lower()
            status = int(head[9:12])
            if b"\r\ntransfer-encoding: chunked" in head:
                first, body = await self._read_chunked(start, on_first_chunk)
                ok = status == 200 and first is not None and b"data: [DONE]" in body[-64:]
            else:
                first, body = None, await self.reader.readexactly(int(CONTENT_LENGTH.search(head).group(1)))
                ok = status == 200 and b'"choices"' in body
            if b"\r\nconnection: close" in head:
                self.close()
            error = "" if ok else f"HTTP {status}: {body[:200]!r}"
            return Result(ok, time.perf_counter() - start, first, error)
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError, ValueError, AttributeError) as exc:
            self.close()  # the connection is in an unknown state: the next request opens another
            reason = "cut mid-answer" if isinstance(exc, asyncio.IncompleteReadError) else type(exc).__name__
            return Result(False, time.perf_counter() - start, None, reason)

    async def _read_chunked(self, start: float, on_first_chunk) -> tuple[float | None, bytes]:
        first, parts = None, []
        while True:
            size = int((await self.reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await self.reader.readuntil(b"\r\n")  # no trailers: just the final CRLF
                return first, b"".join(parts)
            chunk = (await self.reader.readexactly(size + 2))[:-2]
            parts.append(chunk)
            if first is None and CONTENT.search(chunk):
                first = time.perf_counter() - start
                if on_first_chunk is not None:
                    on_first_chunk()


# --- the two targets and their bodies -------------------------------------------------------


def targets(stack: Stack) -> tuple[Target, Target, Target | None]:
    direct = Target("direct", stack.provider_port, "/v1/chat/completions", PROVIDER_KEY)
    ours = Target("ours", stack.server_port, "/api/v1/chat/completions", stack.app_key)
    peer = Target(stack.peer, stack.peer_port, "/v1/chat/completions", litellm_peer.MASTER_KEY) if stack.peer else None
    return direct, ours, peer


def body_for(target: Target, *, stream: bool, text: str = QUESTION, chat_id: str | None = None) -> dict:
    """The body a client sends. Directly to the provider: what our server itself sends it
    (model, temperature, max_tokens, usage in streams). To us: FastGPT's body. To the peer:
    an OpenAI SDK's body (the model by name; usage in streams, as we ask the provider)."""
    messages = [{"role": "user", "content": text}]
    if target.name not in ("direct", "ours"):
        body = {"model": MODEL, "messages": messages, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body
    if target.name == "direct":
        body = {"model": MODEL, "messages": messages, "temperature": 0.7, "max_tokens": 2000, "stream": stream}
        if stream:
            body["stream_options"] = {"include_usage": True}
        return body
    body = {"messages": messages, "stream": stream, "detail": False}
    if chat_id:
        body["chatId"] = chat_id
    return body


# --- load -----------------------------------------------------------------------------------


async def closed_loop(target: Target, payloads: list[bytes], total: int, concurrency: int) -> tuple[list[Result], float]:
    """`concurrency` clients, each on its own keep-alive connection, each sending its next
    request as soon as the previous answer is complete, until `total` were sent. Client i
    sends payloads[i % len(payloads)] (e.g. its own chatId)."""
    results: list[Result] = []
    sent = 0

    async def client(index: int) -> None:
        nonlocal sent
        conn = await Connection(target).open()
        payload = payloads[index % len(payloads)]
        while sent < total:
            sent += 1
            results.append(await conn.exchange(payload))
        conn.close()

    started = time.perf_counter()
    await asyncio.gather(*(client(i) for i in range(concurrency)))
    return results, time.perf_counter() - started


@dataclass
class Burst:
    results: list[Result]
    probes: list[Result]
    open_during_probes: int  # fewest of the N streams still open while the probes ran
    rss_mb: float
    threads: int
    hold_core: float  # CPU seconds per second of the holding process while all N are open
    cpu: dict = field(default_factory=dict)
    start_cpu: dict = field(default_factory=dict)  # from sending the N to the last first chunk
    start_wall: float = math.nan  # s, from sending the N to the last first chunk
    sockets: list[int] = field(default_factory=list)  # open sockets of each holding process


def start_spy(pids: list[int], output: str, rate: int) -> subprocess.Popen:
    """py-spy `record --gil --format raw` on the server (its workers with --subprocesses),
    until interrupted (SIGINT: py-spy then writes its output)."""
    spy = shutil.which("py-spy", path=str(Path(PYTHON).parent)) or shutil.which("py-spy")
    if not spy:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install -e '.[bench]'")
    argv = [spy, "record", "--gil", "--format", "raw", "--rate", str(rate), "--output", output,
            "--pid", str(pids[0])] + (["--subprocesses"] if len(pids) > 1 else [])
    return subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


async def burst(stack: Stack, target: Target, n: int, words: int, delay: float, probes: int,
                spy_output: str | None = None, spy_rate: int = 250) -> Burst:
    """N slow streams opened at once, then probe streams while they are held open.
    With ``spy_output`` (ours only), py-spy samples the server from just before the N are
    sent until the last of them has its first chunk: where a stream's start costs CPU."""
    answer = " ".join(f"w{i}" for i in range(words))
    slow = target.request(body_for(target, stream=True, text=f"[[chunk-delay:{delay}]][[answer:{answer}]] slow"))
    probe = target.request(body_for(target, stream=True))

    # Connect first (in batches, so as not to overflow the listen backlog), then send all N
    # requests in the same loop iteration: first-chunk times measure request handling, not a
    # SYN storm.
    conns = []
    for i in range(0, n, 250):
        conns += await asyncio.gather(*(Connection(target).open() for _ in range(min(250, n - i))))
    first_chunks = 0

    def seen_first() -> None:
        nonlocal first_chunks
        first_chunks += 1

    spy = start_spy(stack.pids("server"), spy_output, spy_rate) if spy_output else None
    if spy:
        await asyncio.sleep(1.0)  # py-spy attaches
    before = CpuSnapshot.take(stack)
    started = time.monotonic()
    tasks = [asyncio.create_task(conn.exchange(slow, seen_first)) for conn in conns]
    hold = words * delay
    # Probe only once every stream has started (or failed), and stop a second before the first
    # of them can end, so each probe sees all N open.
    while first_chunks + sum(t.done() for t in tasks) < n and time.monotonic() - started < hold:
        await asyncio.sleep(0.01)
    start_wall = time.monotonic() - started
    start_cpu = CpuSnapshot.take(stack).since(before)
    if spy:
        spy.send_signal(signal.SIGINT)
        errors = (await asyncio.to_thread(spy.communicate))[1].decode(errors="replace")
        if not Path(spy_output).exists():
            raise SystemExit(f"py-spy failed ({spy.returncode}): {errors[-500:]}")
    probe_results, open_counts = [], []
    holder = stack.pids("server" if target.name == "ours" else "provider")
    rss_mb, threads = memory_and_threads(holder)
    sockets = [open_sockets(pid) for pid in holder]
    hold_cpu, hold_started = cpu_seconds(holder), time.monotonic()
    while time.monotonic() - started < hold - 1.0:
        if len(probe_results) < probes:
            open_counts.append(sum(not t.done() for t in tasks))
            probe_results.append(await Connection(target).exchange(probe))
        await asyncio.sleep(0.05)
    # Share of one core the holder spent just relaying the held streams (and the probes).
    held_for = time.monotonic() - hold_started
    hold_core = (cpu_seconds(holder) - hold_cpu) / held_for if held_for > 0.5 else math.nan
    results = await asyncio.gather(*tasks)
    cpu = CpuSnapshot.take(stack).since(before)
    for conn in conns:
        conn.close()
    return Burst(results, probe_results, min(open_counts, default=0), rss_mb, threads, hold_core, cpu,
                 start_cpu, start_wall, sockets)


# --- statistics and report --------------------------------------------------------------------


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[max(0, math.ceil(q / 100 * len(ordered)) - 1)]


@dataclass
class Row:
    case: str
    via: str
    n: int
    errors: int
    rate: float  # requests/s (NaN where not meaningful)
    p50: float  # ms
    p99: float  # ms
    cpu: dict
    added: tuple[float, float] | None = None  # ms, ours rows only
    error_kinds: list[str] = field(default_factory=list)  # a few distinct errors, for the progress lines

    def cpu_ms(self, key: str) -> float:
        """CPU ms per request of one party; "relay" is the process under test (our server, the
        peer; for direct rows both, which are idle then)."""
        if not self.cpu or not self.n:
            return math.nan
        if key == "relay":
            value = {"ours": self.cpu["server"], "direct": self.cpu["server"] + self.cpu["peer"]}.get(
                self.via, self.cpu["peer"])
        else:
            value = self.cpu[key]
        return value / self.n * 1000

    def cpu_text(self) -> str:
        if not self.cpu or not self.n:
            return ""
        busy = self.cpu["busy"] / self.cpu["total"] * 100 if self.cpu["total"] else math.nan
        return "/".join(f"{self.cpu_ms(k):.2f}" for k in ("client", "provider", "relay", "other")) + f" ({busy:.0f}%)"


def row_from(case: str, via: str, results: list[Result], wall: float | None, cpu: dict, *, stream: bool) -> Row:
    good = [r for r in results if r.ok]
    metric = [(r.first_chunk if stream else r.latency) * 1000 for r in good]
    rate = len(good) / wall if wall else math.nan
    kinds = sorted({r.error[:160] for r in results if not r.ok})[:3]
    return Row(case, via, len(results), len(results) - len(good), rate, percentile(metric, 50),
               percentile(metric, 99), cpu, error_kinds=kinds)


def with_added(direct: Row, ours: Row) -> Row:
    ours.added = (ours.p50 - direct.p50, ours.p99 - direct.p99)
    return ours


def ratio(a: float, b: float) -> float:
    return a / b if b and not math.isnan(a) and not math.isnan(b) and b > 0 else math.nan


def fmt(value: float, digits: int = 1) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:.{digits}f}"


def print_table(rows: list[Row]) -> None:
    print("\n| case | via | n | errors | req/s | p50 ms | p99 ms | added p50 ms | added p99 ms "
          "| CPU ms/req client/provider/relay/other (machine busy) |")
    print("|---|---|--:|--:|--:|--:|--:|--:|--:|---|")
    for r in rows:
        added = (fmt(r.added[0], 2), fmt(r.added[1], 2)) if r.added else ("", "")
        print(f"| {r.case} | {r.via} | {r.n} | {r.errors} | {fmt(r.rate, 0)} | {fmt(r.p50, 2)} | {fmt(r.p99, 2)} "
              f"| {added[0]} | {added[1]} | {r.cpu_text()} |")


# --- the run ----------------------------------------------------------------------------------


async def warm_up(all_targets: list[Target], count: int) -> None:
    """Imports, the provider's and the database's connection pools, the first requests of each
    worker thread: none of that belongs in the figures."""
    for target in all_targets:
        for stream in (False, True):
            results, _ = await closed_loop(target, [target.request(body_for(target, stream=stream))], count, 8)
            failed = [r.error for r in results if not r.ok]
            if failed:
                raise RuntimeError(f"warm-up against {target.name} failed: {failed[0]}")


async def closed_loop_case(stack, direct, ours, peer, label, *, total, concurrency, rounds, stream=False,
                           chats=False) -> list[Row]:
    """`total` requests per target, in `rounds` alternating rounds: direct, ours, peer, direct,
    ours, peer, … — machine noise then falls on every target alike. The peer takes no part in
    the chatId case (it keeps no history)."""
    lineup = [direct, ours] + ([peer] if peer and not chats else [])
    payloads = {}
    for target in lineup:
        if chats and target is ours:
            # One chat per client connection, new ones for this case; history grows as it runs.
            tag = f"bench-{time.time_ns()}"
            payloads[target.name] = [target.request(body_for(target, stream=stream, chat_id=f"{tag}-{i}"))
                                     for i in range(concurrency)]
        else:
            payloads[target.name] = [target.request(body_for(target, stream=stream))]
    results = {t.name: [] for t in lineup}
    walls = {t.name: 0.0 for t in lineup}
    cpus = {t.name: {} for t in lineup}
    rounds = max(1, min(rounds, total // concurrency))
    for r in range(rounds):
        share = total // rounds + (1 if r < total % rounds else 0)
        for target in lineup:
            before = CpuSnapshot.take(stack)
            got, wall = await closed_loop(target, payloads[target.name], share, concurrency)
            cpus[target.name] = add_cpu(cpus[target.name], CpuSnapshot.take(stack).since(before))
            results[target.name] += got
            walls[target.name] += wall
            await asyncio.sleep(0.2)  # let the last saves and socket closes settle
    rows = [row_from(label, t.name, results[t.name], walls[t.name], cpus[t.name], stream=stream) for t in lineup]
    for row in rows[1:]:
        with_added(rows[0], row)
    print_progress(rows)
    return rows


def print_progress(rows: list[Row]) -> None:
    for r in rows:
        added = f"  added p50 {fmt(r.added[0], 2)} p99 {fmt(r.added[1], 2)} ms" if r.added else ""
        print(f"  {r.case:<34} {r.via:<7} n={r.n:<5} err={r.errors:<4} {fmt(r.rate, 0):>6} req/s  "
              f"p50 {fmt(r.p50, 2)} p99 {fmt(r.p99, 2)} ms{added}  relay CPU {fmt(r.cpu_ms('relay'), 2)} ms/req",
              flush=True)
        for kind in r.error_kinds:
            print(f"      error: {kind}", flush=True)
    print(f"    (load average {os.getloadavg()[0]:.2f})", flush=True)


async def streams_case(stack, direct, ours, args) -> tuple[list[Row], list[int], list[str]]:
    """Returns the rows, the levels N our server held (every stream ended with [DONE]) and
    notes (memory, threads, errors)."""
    rows, held, notes = [], [], []
    for n in args.streams:
        level = {}
        for target in (direct, ours):
            spy_output = args.burst_profile if target.name == "ours" and not held else None
            b = await burst(stack, target, n, args.stream_words, args.chunk_delay, args.probes,
                            spy_output=spy_output, spy_rate=args.profile_rate)
            level[target.name] = b
            # The start phase alone (sending the N until the last first chunk): each party's CPU
            # per stream start, so the figure means something on a machine the parties share.
            sc = b.start_cpu
            notes.append(f"{n} streams via {target.name}, start phase: {b.start_wall:.2f} s to the last first chunk; "
                         "CPU ms per stream start client/provider/relay/other "
                         f"{sc['client'] / n * 1000:.2f}/{sc['provider'] / n * 1000:.2f}/"
                         f"{(sc['server'] if target.name == 'ours' else 0.0) / n * 1000:.2f}/"
                         f"{sc['other'] / n * 1000:.2f} (of which PostgreSQL {fmt(sc['database'] / n * 1000, 2)}, "
                         f"foreign load {fmt(sc['foreign'] / n * 1000, 2)}); machine busy "
                         f"{sc['busy'] / sc['total'] * 100 if sc['total'] else math.nan:.0f}%, "
                         f"load {os.getloadavg()[0]:.2f}")
            print("  " + notes[-1], flush=True)
            if spy_output:
                print(f"  py-spy --gil on the server during the start phase -> {spy_output}:", flush=True)
                print("\n".join("    " + line for line in profile_shares.table(
                    profile_shares.read(spy_output), cpu_ms=sc["server"] / n * 1000)), flush=True)
            errors = sorted({r.error.split(":")[0] for r in b.results if not r.ok})
            notes.append(f"{n} streams via {target.name}: {sum(r.ok for r in b.results)} completed with [DONE], "
                         f"{sum(not r.ok for r in b.results)} failed {errors or ''}; "
                         f"{'server' if target.name == 'ours' else 'provider'} RSS {b.rss_mb:.0f} MB, "
                         f"{b.threads} threads, sockets per process {b.sockets}, "
                         f"{fmt(b.hold_core * 100, 0)}% of a core while holding them; " + (
                             f"{len(b.probes)} probe(s) with >= {b.open_during_probes} open" if b.probes else
                             "no probe: opening them all took longer than one lasts"))
            print("  " + notes[-1], flush=True)
            await asyncio.sleep(1.0)
        d, o = level["direct"], level["ours"]
        burst_rows = [row_from(f"{n} streams opened at once: first chunk", name, b.results, None, b.cpu, stream=True)
                      for name, b in (("direct", d), ("ours", o))]
        probe_rows = [row_from(f"probe while {n} held: first chunk", name, b.probes, None, {}, stream=True)
                      for name, b in (("direct", d), ("ours", o))]
        level_rows = [burst_rows[0], with_added(*burst_rows), probe_rows[0], with_added(*probe_rows)]
        print_progress(level_rows)
        rows += level_rows
        if not all(r.ok for r in o.results):
            break
        held.append(n)
    return rows, held, notes


# Issue 11's targets (one worker, PostgreSQL; measured in the same run as the peer).
PEER_CPU_SHARE = 0.35  # our server CPU per non-stream turn <= this share of LiteLLM's
ADDED_P50_MS = 3.0
RATE_C32 = 300
BURST_P99_MS = 500  # 1000 streams opened in the same instant: p99 added first chunk
PROBE_P99_MS = 50  # a new stream while 1000 are held


def find_row(rows: list[Row], prefix: str, via: str = "ours") -> Row | None:
    return next((r for r in rows if r.case.startswith(prefix) and r.via == via), None)


def peer_table(rows: list[Row], peer: str) -> list[str]:
    """Ours against the peer, case by case, from the same run's interleaved rounds."""
    out = [f"| case | our CPU ms/req | {peer} CPU ms/req | CPU ours/{peer} | our added p50 ms | {peer} added p50 ms "
           f"| p50 ours/{peer} | our added p99 ms | {peer} added p99 ms | req/s ours | req/s {peer} |",
           "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for ours in rows:
        other = find_row(rows, ours.case, peer) if ours.via == "ours" else None
        if other is None:
            continue
        cpu_o, cpu_p = ours.cpu_ms("relay"), other.cpu_ms("relay")
        out.append(f"| {ours.case} | {fmt(cpu_o, 2)} | {fmt(cpu_p, 2)} | {fmt(ratio(cpu_o, cpu_p), 2)} "
                   f"| {fmt(ours.added[0], 2)} | {fmt(other.added[0], 2)} | {fmt(ratio(ours.added[0], other.added[0]), 2)} "
                   f"| {fmt(ours.added[1], 2)} | {fmt(other.added[1], 2)} | {fmt(ours.rate, 0)} | {fmt(other.rate, 0)} |")
    return out


def verdicts(rows: list[Row], held: list[int], args, database: str) -> list[str]:
    def line(ok: bool, text: str) -> str:
        return f"{'met    ' if ok else 'NOT met'}  {text}"

    out = []
    c1, c32 = find_row(rows, "non-stream, c=1,"), find_row(rows, "non-stream, c=32, no")
    where = "" if database == "PostgreSQL" else f" — measured on {database}; the target is for PostgreSQL"
    if args.peer:
        for row in (c1, c32):
            peer_row = find_row(rows, row.case, args.peer)
            share = ratio(row.cpu_ms("relay"), peer_row.cpu_ms("relay"))
            out.append(line(share <= PEER_CPU_SHARE,
                            f"CPU per non-stream turn <= {PEER_CPU_SHARE} x {args.peer}'s: {row.case}: "
                            f"{row.cpu_ms('relay'):.2f} ms against {peer_row.cpu_ms('relay'):.2f} ms = {share:.2f} x"
                            f"{where}"))
    out.append(line(c1.added[0] <= ADDED_P50_MS, f"added p50 <= {ADDED_P50_MS:.0f} ms: non-stream c=1 added p50 "
                                                 f"{c1.added[0]:.2f} ms (p99 {c1.added[1]:.2f} ms)"))
    out.append(line(c32.rate >= RATE_C32, f">= {RATE_C32} non-stream req/s with history stored: {c32.rate:.0f} req/s "
                                          f"at c=32 ({args.workers} worker{'s' if args.workers > 1 else ''}){where}"))
    if not args.streams:
        return out
    # Two readings of the stream target, at the smallest level of at least 1000 that held: the
    # N streams' own first chunks when all N open in the same instant, and the first chunk of a
    # new stream while N are held.
    level = min((n for n in held if n >= 1000), default=None)
    most = f"held up to {max(held)}" if held else f"none of {args.streams[0]} held"
    if level is None:
        out.append(line(False, f">= 1000 streams held: {most} (every stream ending with [DONE])"))
        return out
    b, p = find_row(rows, f"{level} streams opened"), find_row(rows, f"probe while {level} held")
    workers = f"{args.burst_workers} worker{'s' if args.burst_workers > 1 else ''}"
    out.append(line(b.added[1] <= BURST_P99_MS, f"all {level} streams opened at once, p99 added first chunk <= "
                                                f"{BURST_P99_MS} ms: p99 added {b.added[1]:.0f} ms "
                                                f"(p50 {b.added[0]:.0f} ms); {most} ({workers})"))
    if p.n:
        out.append(line(p.added[1] <= PROBE_P99_MS, f"a new stream while {level} are held, p99 added first chunk <= "
                                                    f"{PROBE_P99_MS} ms: p99 added {p.added[1]:.1f} ms "
                                                    f"(p50 {p.added[0]:.1f} ms, {p.n} probes)"))
    else:
        out.append(line(False, f"a new stream while {level} are held: no probe ran — opening them "
                               f"took longer than one lasts ({args.stream_words * args.chunk_delay:.0f} s)"))
    return out


async def profile(stack: Stack, ours: Target, args) -> None:
    """--profile: sample our server with py-spy (`record --gil --format raw`) while a closed
    loop at concurrency 1 sends it non-stream turns, then print where the samples went."""
    spy = shutil.which("py-spy", path=str(Path(PYTHON).parent)) or shutil.which("py-spy")
    if not spy:
        raise SystemExit("py-spy is not installed: .venv/bin/pip install -e '.[bench]'")
    pids = stack.pids("server")
    rate = args.profile_rate
    argv = [spy, "record", "--gil", "--format", "raw", "--rate", str(rate), "--output", args.profile,
            "--duration", str(args.profile_seconds + 2), "--pid", str(pids[0])] + (["--subprocesses"] if len(pids) > 1 else [])
    spy_proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    await asyncio.sleep(1.0)  # py-spy attaches
    before = CpuSnapshot.take(stack)
    payload = [ours.request(body_for(ours, stream=False))]
    results, wall, deadline = [], 0.0, time.monotonic() + args.profile_seconds
    while time.monotonic() < deadline:
        got, w = await closed_loop(ours, payload, 100, 1)
        results += got
        wall += w
    cpu = CpuSnapshot.take(stack).since(before)
    errors = (await asyncio.to_thread(spy_proc.communicate))[1].decode(errors="replace")
    if spy_proc.returncode != 0 or not Path(args.profile).exists():
        raise SystemExit(f"py-spy failed ({spy_proc.returncode}): {errors[-500:]}")
    n = len(results)
    print(f"profiled {n} non-stream turns at c=1 ({n / wall:.0f} req/s, {sum(not r.ok for r in results)} errors); "
          f"server CPU {cpu['server'] / n * 1000:.2f} ms/request (/proc), other {cpu['other'] / n * 1000:.2f} ms; "
          f"py-spy --gil at {rate} Hz -> {args.profile}\n")
    print("\n".join(profile_shares.table(profile_shares.read(args.profile), cpu_ms=cpu["server"] / n * 1000)))
    print("\n(shares of the samples that held the GIL, shown as ms of the server's CPU per request from /proc)")


async def run(stack: Stack, args) -> None:
    direct, ours, peer = targets(stack)
    small = args.quick
    if args.profile:
        await warm_up([ours], 200)
        await profile(stack, ours, args)
        return
    await warm_up([direct, ours] + ([peer] if peer else []), 40 if small else 200)
    rows = []
    common = {"rounds": args.rounds}
    print(f"non-stream and stream cases (closed loop, {args.rounds} interleaved rounds):", flush=True)
    rows += await closed_loop_case(stack, direct, ours, peer, "non-stream, c=1, no chatId",
                                   total=args.requests_c1, concurrency=1, **common)
    rows += await closed_loop_case(stack, direct, ours, peer, "non-stream, c=32, no chatId",
                                   total=args.requests_c32, concurrency=32, **common)
    rows += await closed_loop_case(stack, direct, ours, peer, "non-stream, c=32, chatId (32 chats)",
                                   total=args.requests_c32, concurrency=32, chats=True, **common)
    rows += await closed_loop_case(stack, direct, ours, peer, "stream, c=1: first chunk",
                                   total=args.requests_c1, concurrency=1, stream=True, **common)
    rows += await closed_loop_case(stack, direct, ours, peer, "stream, c=32: first chunk",
                                   total=args.requests_c32, concurrency=32, stream=True, **common)
    held, notes = [], []
    if args.streams and args.burst_workers != args.workers:
        print(f"our server restarted with {args.burst_workers} worker(s) for the open streams", flush=True)
        await asyncio.to_thread(stack.restart_server, args.burst_workers)
        await warm_up([ours], 40 if small else 200)
    if args.streams:
        print(f"open streams ({args.stream_words} words, one per {args.chunk_delay} s):", flush=True)
        stream_rows, held, notes = await streams_case(stack, direct, ours, args)
        rows += stream_rows

    print_table(rows)
    print()
    for note in notes:
        print(f"- {note}")
    if peer:
        print(f"\nOurs against {peer.name} {stack.peer_version} (same run, interleaved rounds; CPU = the relay "
              f"process's CPU per request from /proc; added = p50/p99 minus the direct rounds'):\n")
        print("\n".join(peer_table(rows, peer.name)))
    print("\nTargets (issue 11):")
    for verdict in verdicts(rows, held, args, stack.database):
        print(f"  {verdict}")
    print(f"\nload average after: {os.getloadavg()[0]:.2f} (above ~1 before or after: something else shared the cores)")


def describe(stack: Stack, args, nofile: int) -> None:
    cpu = next((l.split(":", 1)[1].strip() for l in Path("/proc/cpuinfo").read_text().splitlines()
                if l.startswith("model name")), "?")
    print(f"chat overhead benchmark — {datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC")
    print(f"machine: {os.cpu_count()} cores ({cpu}), load average before: {os.getloadavg()[0]:.2f}; "
          f"open-files limit {nofile}")
    print(f"database: {stack.database}; server: uvicorn config.asgi:application --workers {args.workers} "
          f"--no-access-log {' '.join(args.server_arg)}".rstrip())
    if args.streams and args.burst_workers != args.workers:
        print(f"open streams: the same server restarted with --workers {args.burst_workers}")
    if args.peer:
        print(f"peer: {args.peer} proxy (its own venv, --num_workers {args.workers}, no database, no callbacks), "
              f"interleaved with ours in {args.rounds} rounds per case")
    # uvicorn picks uvloop and httptools by itself when they are installed.
    fast = [name for name in ("uvloop", "httptools") if importlib.util.find_spec(name)]
    print(f"uvicorn event loop / HTTP parser: {'uvloop' if 'uvloop' in fast else 'asyncio'} / "
          f"{'httptools' if 'httptools' in fast else 'h11'} (uvicorn's own choice unless --server-arg says otherwise)")
    print(f"load generator: minimal HTTP/1.1 client on raw asyncio streams "
          f"({'uvloop' if 'uvloop' in fast else 'asyncio'} loop, keep-alive, pre-encoded requests), in this process.\n"
          "Client, provider and server share the same cores: a pessimistic setup.")
    print("CPU column: CPU ms per request of this client / the provider / the relay (our server, or the peer) / "
          "everything else (PostgreSQL, other load), and how busy the whole machine was.\n", flush=True)


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small counts: checks that the script works (~30 s)")
    parser.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (default 1: one instance)")
    parser.add_argument("--burst-workers", type=int, help="worker processes for the open-streams levels (default: "
                        "--workers); our server is restarted with them after the closed-loop cases")
    parser.add_argument("--requests-c1", type=int, help="requests per concurrency-1 case (default 500)")
    parser.add_argument("--requests-c32", type=int, help="requests per concurrency-32 case (default 3000)")
    parser.add_argument("--streams", help="comma-separated levels of open streams (default 1000,1500; 0: none)")
    parser.add_argument("--stream-words", type=int, help="words in each slow answer (default 60: 30 s at 0.5 s a word)")
    parser.add_argument("--chunk-delay", type=float, help="seconds between the words of a slow answer (default 0.5)")
    parser.add_argument("--probes", type=int, help="probe streams while the streams are held (default 40)")
    parser.add_argument("--rounds", type=int, help="interleaved rounds per closed-loop case (default 5, --quick 3)")
    parser.add_argument("--peer", choices=["litellm"], help="also run the LiteLLM proxy, interleaved, and compare")
    parser.add_argument("--peer-venv", help="the peer's venv (default .bench-venvs/<peer>; installed when missing)")
    parser.add_argument("--profile", metavar="FILE", help="instead of the cases: py-spy --gil on our server during "
                        "non-stream turns at c=1, raw stacks to FILE, and the share of each part")
    parser.add_argument("--burst-profile", metavar="FILE", help="with --streams: py-spy --gil on our server "
                        "during the first level's start phase (sending the N until the last first chunk), raw "
                        "stacks to FILE, and the share of each part")
    parser.add_argument("--profile-seconds", type=int, default=20, help="how long --profile samples (default 20)")
    parser.add_argument("--profile-rate", type=int, default=250, help="--profile's samples per second (default 250)")
    parser.add_argument("--server-arg", action="append", default=[],
                        help="extra uvicorn argument, repeatable (e.g. --server-arg=--http=httptools)")
    args = parser.parse_args(argv)
    quick = args.quick
    defaults = {
        "requests_c1": 50 if quick else 500,
        "requests_c32": 300 if quick else 3000,
        "streams": "100" if quick else "1000,1500",
        "stream_words": 10 if quick else 60,
        "chunk_delay": 0.3 if quick else 0.5,
        "probes": 10 if quick else 40,
        "rounds": 3 if quick else 5,
    }
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    args.streams = [n for n in (int(v) for v in str(args.streams).split(",")) if n > 0]
    args.burst_workers = args.burst_workers or args.workers
    return args


def client_loop_factory():
    """uvloop when installed (the same loop uvicorn then picks): less client CPU per request."""
    if importlib.util.find_spec("uvloop"):
        import uvloop

        return uvloop.new_event_loop
    return None


def interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    args = parse_args(argv)
    # `kill PID` (and Ctrl-C, even when started in the background) must still run the
    # teardown: the provider and the server run in sessions of their own.
    signal.signal(signal.SIGTERM, interrupt)
    signal.signal(signal.SIGINT, interrupt)
    nofile = raise_open_files_limit()
    stack = Stack(args)
    describe(stack, args, nofile)
    try:
        stack.start()
        with asyncio.Runner(loop_factory=client_loop_factory()) as runner:
            runner.run(run(stack, args))
    except BaseException:
        for name in ("server", "peer"):
            log = stack.log_tail(name)
            if log:
                print(f"\nlast lines of the {name}'s log:\n{log}", file=sys.stderr)
        raise
    else:
        # Leave out the readiness check's own 405 (see Stack.start).
        log = "\n".join(line for line in stack.log_tail("server", 40).splitlines()
                        if "Method Not Allowed" not in line)
        if log:
            print(f"\nthe server logged (last lines):\n{log}")
    finally:
        stack.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
