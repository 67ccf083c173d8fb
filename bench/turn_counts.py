"""What one non-stream chat turn does inside the server: thread hops, SQL statements, CPU —
as deployed, and with the parts the chat API does not use taken away (in this process only).

    .venv/bin/python bench/turn_counts.py [--turns 400] [--rounds 4]                   # SQLite (temp file)
    .venv/bin/python -m tests.with_postgres .venv/bin/python bench/turn_counts.py       # PostgreSQL

The script migrates a fresh database, makes the demo app key (`bootstrap_demo`), starts the
local provider (`python -m tests.fake_provider`, its own process) and sends the turns straight
to Django's ASGI application in this process (an ASGI scope, no socket, no uvicorn), one at a
time (c=1), uvloop. Variants, interleaved round by round:

  * as deployed: `config.asgi.application` (since the lean path: its LeanHandler for this
    endpoint, config/asgi.py; before it, Django's handler with settings.MIDDLEWARE);
  * Django's full handler: `config.asgi.full_application`, where it exists (the handler every
    other path gets: settings.MIDDLEWARE, a thread per request) — the lean path's "before";
  * no middleware: a second ASGIHandler built with MIDDLEWARE = [] (the chat view needs none
    of them: it is csrf-exempt, reads the key itself, sets its own headers);
  * no middleware, no request signals: also without the request_started/request_finished
    receivers (close_old_connections, reset_queries; our steps close PostgreSQL's connection
    themselves). A measurement of what they cost, not a safe configuration.

Generic hooks count, per turn: every sync_to_async hop by the function it runs (and that
function's own CPU in its thread), every SQL statement — through Django's cursor, or on
psycopg's async pool (`AsyncClientCursor.execute`) — and its wall time, driver and database
included. Also measured: the CPU of one bare hop (`await sync_to_async(noop)()`
inside a ThreadSensitiveContext, as Django runs each request) and of the provider call alone.

CPU is this process's (time.process_time: every thread; the provider runs elsewhere).
Hooks and rounds are identical for every variant; the hooks' own cost is in every figure.
"""

import argparse
import asyncio
import contextlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
from chat_overhead import client_loop_factory, free_port, http_status  # noqa: E402
from asgi_calls import post  # noqa: E402

PROVIDER_KEY = "bench-provider-key"
MODEL = "bench-llm"


def setup_django(folder: Path, provider_port: int) -> str:
    os.environ.setdefault("DATABASE_URL", f"sqlite:///{folder / 'turns.sqlite3'}")
    os.environ.update({
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "AI_MODELS": json.dumps([{"name": MODEL, "type": "llm", "baseUrl": f"http://127.0.0.1:{provider_port}/v1",
                                  "apiKey": PROVIDER_KEY, "timeout": 120}]),
        "DEFAULT_LLM_MODEL": MODEL, "API_KEY_RATE": "", "LOG_LEVEL": "WARNING", "DEBUG": "false",
    })
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    out = io.StringIO()
    call_command("bootstrap_demo", stdout=out)
    return re.search(r"app key:\s+(fastgpt-\S+)", out.getvalue()).group(1)


class Hooks:
    """Counts hops and statements; `on` only while a measured turn runs."""

    def __init__(self):
        self.on = False
        self.reset()  # hops, hop_cpu (per function run in a hop), statements, sql_wall
        self.sample: list[str] = []  # the statements of one turn, in order
        self.keep_sample = False
        self.profiler = None  # a cProfile.Profile for our own steps (--cprofile)

    def reset(self) -> None:
        """Forget the counts (before a measured round)."""
        self.hops, self.hop_cpu, self.statements, self.sql_wall = Counter(), defaultdict(float), Counter(), 0.0

    @staticmethod
    def new_figure() -> dict:
        """A variant's totals over its rounds (add_round fills them)."""
        return {"cpu": 0.0, "wall": 0.0, "n": 0, "hops": Counter(), "hop_cpu": Counter(), "statements": Counter(),
                "sql_wall": 0.0}

    def add_round(self, figure: dict, *, cpu: float, wall: float, n: int) -> None:
        """Add a measured round of `n` calls and this round's counts to `figure`."""
        figure["cpu"] += cpu
        figure["wall"] += wall
        figure["n"] += n
        figure["hops"].update(self.hops)
        figure["hop_cpu"].update(self.hop_cpu)
        figure["statements"].update(self.statements)
        figure["sql_wall"] += self.sql_wall

    def install(self) -> None:
        from asgiref.sync import SyncToAsync
        from django.db.backends import utils

        hooks, original_call = self, SyncToAsync.__call__

        async def call(self, *args, **kwargs):
            # Some SyncToAsync objects are made once and called on every request: wrap the
            # original function each time, never a wrapper.
            func = self.__dict__.setdefault("_bench_original", self.func)
            if not hooks.on:
                self.func = func
                return await original_call(self, *args, **kwargs)
            name = f"{getattr(func, '__module__', '?')}.{getattr(func, '__qualname__', repr(func))}"
            hooks.hops[name] += 1

            def timed(*a, **kw):
                profiler = hooks.profiler if name.startswith(("chat.", "keys.", "config.", "providers.")) else None
                started = time.thread_time()
                if profiler:
                    profiler.enable()
                try:
                    return func(*a, **kw)
                finally:
                    if profiler:
                        profiler.disable()
                    hooks.hop_cpu[name] += time.thread_time() - started

            self.func = timed
            return await original_call(self, *args, **kwargs)

        SyncToAsync.__call__ = call
        for method in ("execute", "executemany"):
            original = getattr(utils.CursorWrapper, method)

            def wrapper(cursor, sql, *args, _original=original, **kwargs):
                if not hooks.on:
                    return _original(cursor, sql, *args, **kwargs)
                started = time.perf_counter()
                try:
                    return _original(cursor, sql, *args, **kwargs)
                finally:
                    hooks.sql_wall += time.perf_counter() - started
                    kind = " ".join(sql.split()[:1]).upper()
                    table = re.search(r'(?:FROM|INTO|UPDATE)\s+"?(\w+)"?', sql, re.I)
                    hooks.statements[f"{kind} {table.group(1) if table else ''}".strip()] += 1
                    if hooks.keep_sample:
                        hooks.sample.append(f"{kind} {table.group(1) if table else ''}".strip())

            setattr(utils.CursorWrapper, method, wrapper)

        # The turn's statements on psycopg's async pool (chat/completions/turn_store.py).
        import psycopg

        original_async = psycopg.AsyncClientCursor.execute

        async def async_execute(cursor, query, *args, **kwargs):
            if not hooks.on:
                return await original_async(cursor, query, *args, **kwargs)
            started = time.perf_counter()
            try:
                return await original_async(cursor, query, *args, **kwargs)
            finally:
                hooks.sql_wall += time.perf_counter() - started
                sql = query if isinstance(query, str) else str(query)
                kind = " ".join(sql.split()[:1]).upper() + " (async pool)"
                hooks.statements[kind] += 1
                if hooks.keep_sample:
                    hooks.sample.append(kind)

        psycopg.AsyncClientCursor.execute = async_execute


async def turn(app, key: str, body: bytes) -> int:
    """One chat turn through the ASGI app; its status (raises unless 200)."""
    await post(app, "/api/v1/chat/completions", key, body)
    return 200


@contextlib.contextmanager
def without_request_signals():
    from django.core import signals

    saved = [(s, s.receivers[:]) for s in (signals.request_started, signals.request_finished)]
    for signal, _ in saved:
        signal.receivers.clear()
        signal.sender_receivers_cache.clear()
    try:
        yield
    finally:
        for signal, receivers in saved:
            signal.receivers[:] = receivers
            signal.sender_receivers_cache.clear()


async def bare_hop_cpu(count: int) -> float:
    from asgiref.sync import ThreadSensitiveContext, sync_to_async

    def noop():
        return None

    started = time.process_time()
    for _ in range(count // 10):
        async with ThreadSensitiveContext():  # as Django does per request: a new thread each
            for _ in range(10):
                await sync_to_async(noop)()
    return (time.process_time() - started) / count


async def provider_call_cpu(count: int) -> float:
    """chat/llm.py's upstream call, alone (whichever module holds it today)."""
    import httpx

    client = httpx.AsyncClient()
    body = {"model": MODEL, "messages": [{"role": "user", "content": "How fast?"}], "temperature": 0.7,
            "max_tokens": 2000, "stream": False}
    url = json.loads(os.environ["AI_MODELS"])[0]["baseUrl"] + "/chat/completions"
    headers = {"Authorization": f"Bearer {PROVIDER_KEY}"}
    for _ in range(50):
        await client.post(url, json=body, headers=headers)
    started = time.process_time()
    for _ in range(count):
        response = await client.post(url, json=body, headers=headers, timeout=httpx.Timeout(120, connect=5))
        json.loads(response.content)
    cpu = (time.process_time() - started) / count
    await client.aclose()
    return cpu


async def run(args, key: str) -> None:
    from django.conf import settings
    from django.core.handlers.asgi import ASGIHandler

    from config.asgi import application as deployed

    middleware = settings.MIDDLEWARE
    settings.MIDDLEWARE = []
    bare = ASGIHandler()  # loads the (empty) middleware chain now
    settings.MIDDLEWARE = middleware
    import config.asgi

    variants = {"as deployed": (deployed, contextlib.nullcontext)}
    if hasattr(config.asgi, "full_application"):
        variants["Django's full handler"] = (config.asgi.full_application, contextlib.nullcontext)
    variants |= {
        "no middleware": (bare, contextlib.nullcontext),
        "no middleware, no request signals": (bare, without_request_signals),
    }
    body = json.dumps({"messages": [{"role": "user", "content": "How fast is the relay?"}], "stream": False,
                       "detail": False}).encode()
    hooks = Hooks()
    hooks.install()
    for app, _ in variants.values():  # warm-up
        for _ in range(50):
            await turn(app, key, body)
    figures = {name: Hooks.new_figure() for name in variants}
    sample_of = {}
    per_round = args.turns // args.rounds
    for _ in range(args.rounds):
        for name, (app, context) in variants.items():
            hooks.reset()
            with context():
                hooks.on = True
                if name not in sample_of:
                    hooks.keep_sample, hooks.sample = True, []
                    await turn(app, key, body)
                    hooks.keep_sample = False
                    sample_of[name] = hooks.sample
                    hooks.reset()
                cpu0, wall0 = time.process_time(), time.perf_counter()
                for _ in range(per_round):
                    await turn(app, key, body)
                cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                hooks.on = False
            hooks.add_round(figures[name], cpu=cpu, wall=wall, n=per_round)
    if args.cprofile:
        # Our two database steps under cProfile, in the leanest variant: where their time goes.
        import cProfile
        import pstats

        app, context = variants["no middleware, no request signals"]
        hooks.profiler = cProfile.Profile(time.thread_time)  # CPU of the thread, not waiting on the database
        with context():
            hooks.on = True
            for _ in range(args.turns):
                await turn(app, key, body)
            hooks.on = False
        stats = pstats.Stats(hooks.profiler, stream=io.StringIO())
        rows = []
        for (file, line, func), (cc, nc, tt, ct, callers) in stats.stats.items():
            if re.search(r"/(chat|keys|config|providers)/[^/]+\.py$", file) or (
                    "/django/db/models/" in file and func in ("get", "first", "create", "save", "bulk_create",
                                                              "update", "_fetch_all", "execute_sql")) or (
                    "/django/db/" in file and func in ("__exit__", "__enter__", "commit", "close", "execute",
                                                       "_execute", "ensure_connection", "connect")) or (
                    "/rest_framework/" in file and func in ("is_valid", "run_validation")):
                rows.append((ct / args.turns * 1000, nc / args.turns, f"{Path(file).parent.name}/{Path(file).name}:{line} {func}"))
        hooks.profiler_rows = sorted(rows, reverse=True)[:args.cprofile]
    hop = await bare_hop_cpu(2000)
    upstream = await provider_call_cpu(500)

    print("| variant | turns | CPU ms/turn | wall ms/turn | hops/turn | statements/turn | SQL wall ms/turn |")
    print("|---|--:|--:|--:|--:|--:|--:|")
    for name, f in figures.items():
        n = f["n"]
        print(f"| {name} | {n} | {f['cpu'] / n * 1000:.2f} | {f['wall'] / n * 1000:.2f} | "
              f"{sum(f['hops'].values()) / n:.1f} | {sum(f['statements'].values()) / n:.1f} | "
              f"{f['sql_wall'] / n * 1000:.2f} |")
    print(f"\nbare sync_to_async hop (new ThreadSensitiveContext every 10 hops): {hop * 1000:.3f} ms CPU")
    print(f"provider call alone (httpx.AsyncClient.post + json.loads, c=1): {upstream * 1000:.3f} ms CPU")
    for name, f in figures.items():
        n = f["n"]
        print(f"\n{name}: hops per turn, by the function run in the thread (its own CPU in the thread)")
        for func, count in f["hops"].most_common():
            print(f"  {count / n:4.1f} x {func}  ({f['hop_cpu'][func] / n * 1000:.3f} ms)")
        print(f"  statements of one turn, in order: {', '.join(sample_of[name])}")
    if args.cprofile:
        print(f"\ncProfile of our thread steps ({args.turns} turns, no middleware, no signals; cumulative thread CPU ms per turn, "
              "inflated by cProfile's own cost — read as shares):")
        for ms, calls, where in hooks.profiler_rows:
            print(f"  {ms:6.3f} ms  {calls:4.1f} calls  {where}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--turns", type=int, default=400, help="turns per variant (default 400)")
    parser.add_argument("--rounds", type=int, default=4, help="interleaved rounds (default 4)")
    parser.add_argument("--cprofile", type=int, default=0, metavar="N",
                        help="also profile our thread steps with cProfile and print the N biggest entries")
    args = parser.parse_args(argv)
    folder = Path(tempfile.mkdtemp(prefix="turn-counts-"))
    port = free_port()
    provider = subprocess.Popen([sys.executable, "-m", "tests.fake_provider", "--port", str(port),
                                 "--api-key", PROVIDER_KEY], cwd=ROOT, stdout=subprocess.DEVNULL,
                                stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while http_status(port, "GET", "/v1/models", {"Authorization": f"Bearer {PROVIDER_KEY}"}) != 200:
            if provider.poll() is not None or time.monotonic() > deadline:
                raise SystemExit("the provider did not start")
            time.sleep(0.1)
        key = setup_django(folder, port)
        database = "PostgreSQL" if os.environ["DATABASE_URL"].startswith("postgres") else "SQLite"
        print(f"turn counts — {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC, {database}, "
              f"load average {os.getloadavg()[0]:.2f}; {args.turns} turns per variant in {args.rounds} rounds\n")
        with asyncio.Runner(loop_factory=client_loop_factory()) as runner:
            runner.run(run(args, key))
        print(f"\nload average after: {os.getloadavg()[0]:.2f}")
    finally:
        provider.terminate()
        provider.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
