"""A dataset's vector recall on PostgreSQL, exact (no HNSW index: a small dataset, or a large
one still loading) against through its own HNSW index, by the dataset's size: where
VECTOR_INDEX_MIN_ROWS pays, and what a search costs while a large load waits for its index.

    .venv/bin/python bench/vector_index_threshold.py                     # 1k … 50k chunks
    .venv/bin/python bench/vector_index_threshold.py --sizes 2000,10000 --queries 100

One throwaway PostgreSQL 18 + pgvector (`shared_buffers` 1 GB); per size a dataset of that
many real prose chunks with their built-in vectors (bench/search_corpus.py, which builds the
dataset's index as the app does). Per size, QUERIES random 2–4-word queries (after 10
unmeasured) through `PgVectorBackend.recall` — the pipeline's statement: limit 100, its
settings, the hits' rows joined — first with the index, then with it dropped (the exact scan
the planner then takes), one after the other. Prints the
p50/p99 wall time per statement in this process and the PostgreSQL backend's CPU per
statement (/proc/PID/schedstat), the plan each used, and the index's recall@10 against the
exact scan's top 10 (strict: the same ids).

Runs its measurements in a child process (`--child`), since Django is configured once per process.
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import child_result_on_postgres  # noqa: E402 (after the path insert)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="1000,2000,5000,10000,20000,50000")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    result = child_result_on_postgres(
        __file__, ["--sizes", args.sizes, "--queries", str(args.queries)], prefix="bench-threshold-", shared_buffers="1GB"
    )
    print(render(result))
    print(json.dumps(result))


def render(result: dict) -> str:
    lines = [f"{result['queries']} random-word queries per size · load average {result['load_average_before']} "
             f"before, {result['load_average_after']} after", "",
             "| chunks in the dataset | exact p50 / p99 ms | exact DB CPU ms | with its index p50 / p99 ms | with its index DB CPU ms | p50 exact ÷ with index | plans (exact, with index) | recall@10 with index |",
             "|--:|--:|--:|--:|--:|--:|---|--:|"]
    for row in result["sizes"]:
        exact, hnsw = row["exact"], row["hnsw"]
        lines.append(f"| {row['chunks']:,} | {exact['p50']:.2f} / {exact['p99']:.2f} | {exact['db_cpu_ms']:.2f} | "
                     f"{hnsw['p50']:.2f} / {hnsw['p99']:.2f} | {hnsw['db_cpu_ms']:.2f} | {exact['p50'] / hnsw['p50']:.2f} | "
                     f"{exact['plan']}, {hnsw['plan']} | "
                     f"{row['recall_at_10']:.3f} |")
    return "\n".join(lines)


def backend_cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/schedstat") as stat:
        return int(stat.read().split()[0]) / 1e9


def child(args) -> None:
    import django

    os.environ["DATABASE_URL"] = args.database_url
    django.setup()
    import numpy as np
    from django.core.management import call_command
    from django.db import connection

    from bench import search_corpus as corpus
    from datasets.search.vector.pgvector import PgVectorBackend, settings_sql
    from keys.models import Team
    from providers.embeddings import lexical_embedding

    call_command("migrate", verbosity=0)
    load_before = [round(x, 2) for x in os.getloadavg()]
    backend = PgVectorBackend()
    rng = np.random.default_rng(5)
    rows = []
    for chunks in (int(size) for size in args.sizes.split(",")):
        loaded = corpus.load_corpus(chunks=chunks, corpus="prose")
        Team.objects.filter(pk=loaded.team.pk).update(name=f"bench-{chunks}")  # the next load's is "bench"
        texts = corpus.queries(rng, loaded.vocabulary, loaded.weights, args.queries + 10)
        vectors = [vector for vector in lexical_embedding(texts) if np.any(vector)]
        index = corpus.hnsw_index(loaded.dataset.id)

        def plan(vector) -> str:
            sql, params = backend.recall_sql(dataset_ids=[loaded.dataset.id], query=vector, limit=100, sparse=True)
            with connection.cursor() as cursor:
                cursor.execute(f"{settings_sql(100, prefer_index=True)}; EXPLAIN {sql}", params)  # as recall sends it
                while cursor.description is None and cursor.nextset():
                    pass
                return "hnsw" if index in "\n".join(r[0] for r in cursor.fetchall()) else "exact"

        def timed(vector) -> tuple[float, float, set[str]]:
            pid = connection.connection.info.backend_pid
            cpu, started = backend_cpu_seconds(pid), time.perf_counter()
            hits = backend.recall(dataset_ids=[loaded.dataset.id], query=vector, limit=100, sparse=True)
            wall = (time.perf_counter() - started) * 1000
            return wall, (backend_cpu_seconds(pid) - cpu) * 1000, {hit.index_id for hit in hits[:10]}

        rows.append(measure(chunks, vectors, index, timed, plan))
        corpus.log(f"  {chunks:,} chunks: {rows[-1]}")
    print(json.dumps({"queries": args.queries, "sizes": rows, "load_average_before": load_before,
                      "load_average_after": [round(x, 2) for x in os.getloadavg()]}))


def measure(chunks, vectors, index, timed, plan) -> dict:
    """Every query through the dataset's index, then every query again with the index dropped
    (one build per size: a build costs more than all the queries)."""
    import numpy as np
    from django.db import connection

    from datasets.search.vector.pgvector_indexes import forget_index_sizes

    with connection.cursor() as cursor:
        cursor.execute("ANALYZE datasets_dataindex")
    plans = {"hnsw": plan(vectors[0])}
    figures = {"hnsw": [timed(vector) for vector in vectors][10:]}
    with connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX "{index}"')
    forget_index_sizes()  # (the recall then orders by the stored vectors, as without an index)
    plans["exact"] = plan(vectors[0])
    figures["exact"] = [timed(vector) for vector in vectors][10:]

    def summary(side: str) -> dict:
        wall = np.array([w for w, _, _ in figures[side]])
        cpu = np.array([c for _, c, _ in figures[side]])
        return {"p50": round(float(np.percentile(wall, 50)), 2), "p99": round(float(np.percentile(wall, 99)), 2),
                "db_cpu_ms": round(float(np.median(cpu)), 2), "plan": plans[side]}

    # recall@10 of the index against the exact scan's top 10 (strict: the same ids)
    found = [len(hnsw & exact) / max(1, len(exact)) for (_, _, hnsw), (_, _, exact) in zip(figures["hnsw"], figures["exact"])]
    return {"chunks": chunks, "hnsw": summary("hnsw"), "exact": summary("exact"),
            "recall_at_10": round(float(np.mean(found)), 4)}


if __name__ == "__main__":
    main()
