"""Where an embedding-mode searchTest's database time goes, statement by statement, on real
prose, PostgreSQL + pgvector.

    .venv/bin/python bench/search_statements.py                   # 100,000 prose chunks, 200 searches
    .venv/bin/python bench/search_statements.py --chunks 20000 --queries 100

One throwaway PostgreSQL 18 + pgvector (bench/databases.py, `shared_buffers` 1 GB), loaded as
bench/search.py loads it (bench/search_corpus.py: CHUNKS prose chunks, their built-in vectors,
the HNSW index). Then, in this process, QUERIES chunk-like questions (search_corpus's), each
searched as the endpoint does after authentication: the key read by its hash
(`key_for_secret`), then `search_test` (datasets, query embedding, recall with its rows, usage). After
one unmeasured pass over every query (the index into the buffer cache).

Every statement is timed through a Django execute wrapper: its wall time (client side, round
trip included) and the backend's CPU (/proc/PID/schedstat of the connection's backend,
nanoseconds). Statements are named by what they read or write. Printed: per statement, p50
wall, its share of the searches' total wall time (measured in the same loop) and mean backend
CPU; then the totals and the process's own CPU per search. Not measured
here: the pool's connection check of a served request (one empty round trip) and the ASGI/DRF
layer (bench/search_overhead.py).

Runs in a child process (`--child`), since Django is configured once per process.
"""

import argparse
import json
import os
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import child_result_on_postgres  # noqa: E402 (after the path insert)

# What a statement is, by a piece of its text (first match wins).
KINDS = (
    ("key by hash", "WHERE k.key_hash"),
    ("datasets", "FROM datasets_dataset d"),
    ("recall (SETs + HNSW, joined with the rows on PostgreSQL)", "hnsw.ef_search"),
    ("recalled rows", "FROM datasets_data d JOIN"),
    ("table size (once a minute)", "reltuples"),
    ("usage update", "UPDATE keys_apikey"),
)


def kind_of(sql: str) -> str:
    return next((name for name, marker in KINDS if marker in sql), "other: " + sql[:60])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--shared-buffers", default="1GB")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    result = child_result_on_postgres(
        __file__, ["--chunks", str(args.chunks), "--queries", str(args.queries)],
        prefix="bench-stmts-", shared_buffers=args.shared_buffers,
    )
    print(render(result))
    print(json.dumps(result))


def render(result: dict) -> str:
    lines = [
        f"{result['chunks']:,} prose chunks · {result['searches']} embedding-mode searches · "
        f"load average {result['load_average_before']} before, {result['load_average_after']} after",
        "",
        "| statement | per search | wall p50 ms | share of a search's wall time | backend CPU ms (mean) |",
        "|---|--:|--:|--:|--:|",
    ]
    for name, figures in result["statements"].items():
        lines.append(f"| {name} | {figures['per_search']} | {figures['wall_p50_ms']} | "
                     f"{figures['share_of_search']:.0%} | {figures['cpu_ms']} |")
    totals = result["totals"]
    lines += [
        f"| **all statements** | {totals['statements_per_search']} | {totals['wall_p50_ms']} | "
        f"{totals['share_of_search']:.0%} | {totals['cpu_ms']} |",
        "",
        f"This process's CPU per search (key lookup + service, statements' client side included): "
        f"{totals['process_cpu_ms']} ms; wall p50 per search {totals['search_wall_p50_ms']} ms.",
    ]
    return "\n".join(lines)


def child(args) -> None:
    import django

    os.environ["DATABASE_URL"] = args.database_url
    django.setup()
    import numpy as np
    from django.core.management import call_command
    from django.db import connection

    from bench import search_corpus as corpus
    from bench.hnsw_params import backend_cpu_seconds, backend_pid
    from datasets.search.pipeline import SearchOptions
    from datasets.services.search import search_test
    from keys.selectors import key_for_secret

    call_command("migrate", verbosity=0)
    started_load = os.getloadavg()
    loaded = corpus.load_corpus(chunks=args.chunks, corpus="prose")
    rng = np.random.default_rng(corpus.SEED + 1)
    questions, _ = corpus.doc_like_queries(rng, loaded, args.queries)
    pid = backend_pid()

    def one_search(text: str) -> None:
        key = key_for_secret(key=loaded.key)
        search_test(key=key, dataset_ids=[loaded.dataset.id], text=text, options=SearchOptions())

    for text in questions:  # unmeasured: the index's pages into the buffer cache
        one_search(text)

    walls: dict[str, list[float]] = defaultdict(list)
    cpus: dict[str, float] = defaultdict(float)

    def timed(execute, sql, params, many, context):
        cpu, started = backend_cpu_seconds(pid), time.perf_counter()
        try:
            return execute(sql, params, many, context)
        finally:
            name = kind_of(sql)
            walls[name].append((time.perf_counter() - started) * 1000)
            cpus[name] += backend_cpu_seconds(pid) - cpu

    search_walls = []
    process_cpu = time.process_time()
    with connection.execute_wrapper(timed):
        for text in questions:
            started = time.perf_counter()
            one_search(text)
            search_walls.append((time.perf_counter() - started) * 1000)
    process_cpu = time.process_time() - process_cpu
    if backend_pid() != pid:
        raise RuntimeError("the connection changed during the measurement")

    searches = len(questions)
    statements = {
        name: {
            "per_search": round(len(walls[name]) / searches, 2),
            "wall_p50_ms": round(statistics.median(walls[name]), 3),
            # The baseline, measured in the same loop: the whole search (key lookup + service).
            "share_of_search": round(sum(walls[name]) / sum(search_walls), 4),
            "cpu_ms": round(cpus[name] * 1000 / searches, 3),
        }
        for name in sorted(walls, key=lambda name: -cpus[name])
    }
    result = {
        "chunks": args.chunks, "searches": searches, "statements": statements,
        "totals": {
            "statements_per_search": round(sum(len(w) for w in walls.values()) / searches, 2),
            "wall_p50_ms": round(sum(s["wall_p50_ms"] * s["per_search"] for s in statements.values()), 3),
            "cpu_ms": round(sum(cpus.values()) * 1000 / searches, 3),
            "share_of_search": round(sum(sum(w) for w in walls.values()) / sum(search_walls), 4),
            # The /proc reads of the wrapper are this process's too: a few µs per statement.
            "process_cpu_ms": round(process_cpu * 1000 / searches, 3),
            "search_wall_p50_ms": round(statistics.median(search_walls), 3),
        },
        "load_average_before": [round(x, 2) for x in started_load],
        "load_average_after": [round(x, 2) for x in os.getloadavg()],
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
