"""searchTest through the API, this source tree against another commit's, on one database,
interleaved: what a change to the search path gained, in the same run.

    .venv/bin/python bench/search_ab.py --before HEAD~1                  # 100,000 prose chunks
    .venv/bin/python bench/search_ab.py --before c3194ee --modes embedding,mixedRecall --rounds 5

One throwaway PostgreSQL 18 + pgvector (`shared_buffers` 1 GB), migrated and loaded once as
bench/search.py loads it (bench/search_corpus.py: CHUNKS prose chunks, their built-in vectors,
the HNSW index, ANALYZE; `--also-index halfvec` adds a second index over another cast, for a
commit that searches over it). The other commit's tree is exported with `git archive` and run with
this venv, so both must share the schema (no migration between them). Then ROUNDS rounds, each
starting one `uvicorn config.asgi:application` per side in turn ("before", then "after") and
sending it the same QUERIES random-word searches per mode after a warm-up, one at a time, as
bench/search.py's latency does. Per side and mode: p50/p99 of the client-side time and the CPU
per request of the server's process and of PostgreSQL's processes (from /proc); printed per
round and as the medians over the rounds, with after ÷ before.

Runs its measurements in a child process (`--child`), since Django is configured once per process.
"""

import argparse
import io
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import child_result_on_postgres  # noqa: E402 (after the path insert)

FIGURES = ("p50", "p99", "server_cpu_ms", "database_cpu_ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--before", default="", help="the commit to compare with (any git ref; required)")
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--queries", type=int, default=200, help="measured searches per mode, side and round")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--modes", default="embedding,fullTextRecall,mixedRecall")
    parser.add_argument("--shared-buffers", default="1GB")
    parser.add_argument("--also-index", choices=("", "halfvec", "sparsevec"), default="",
                        help="a second HNSW index of the dataset over this cast, for a side that searches so "
                             "(e.g. halfvec for a commit before the built-in embedding's sparsevec index)")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    parser.add_argument("--before-tree", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args)
    if not args.before:
        parser.error("--before is required")
    commit = subprocess.run(["git", "rev-parse", "--short", args.before], cwd=ROOT, check=True,
                            capture_output=True, text=True).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="bench-ab-before-") as tree:
        archive = subprocess.run(["git", "archive", commit], cwd=ROOT, check=True, capture_output=True).stdout
        with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
            tar.extractall(tree, filter="data")
        result = child_result_on_postgres(
            __file__,
            ["--before-tree", tree, "--chunks", str(args.chunks), "--queries", str(args.queries),
             "--rounds", str(args.rounds), "--modes", args.modes, "--also-index", args.also_index],
            prefix="bench-ab-", shared_buffers=args.shared_buffers,
        )
    result["before"] = commit
    print(render(result))
    print(json.dumps(result))


def render(result: dict) -> str:
    lines = [f"{result['chunks']:,} prose chunks · {result['queries']} searches per mode, side and round · "
             f"before = {result.get('before', '?')}, after = this tree · load average "
             f"{result['load_average_before']} before, {result['load_average_after']} after", ""]
    for mode, sides in result["medians"].items():
        lines += [f"{mode} (median of {len(result['rounds'])} rounds)", "",
                  "| side | p50 ms | p99 ms | server CPU ms/request | PostgreSQL CPU ms/request |",
                  "|---|--:|--:|--:|--:|"]
        for side in ("before", "after"):
            lines.append(f"| {side} | " + " | ".join(f"{sides[side][f]:.2f}" for f in FIGURES) + " |")
        lines.append("| after ÷ before | " + " | ".join(
            f"{sides['after'][f] / sides['before'][f]:.2f}" if sides["before"][f] else "–" for f in FIGURES) + " |")
        lines.append("")
    lines.append("per round (p50 ms before → after): " + "; ".join(
        ", ".join(f"{mode} {r['before'][mode]['p50']:.1f} → {r['after'][mode]['p50']:.1f}" for mode in r["after"])
        for r in result["rounds"]))
    return "\n".join(lines)


def also_index(dataset_id: str, cast: str) -> None:
    """A second index of the dataset's 512 vectors over `cast`, under a name of its own (the
    planner matches an index by its expression and predicate, not its name)."""
    from django.db import connection

    from bench import search_corpus as corpus
    from datasets.search.vector.pgvector_indexes import index_sql

    sql = index_sql(dataset_id, 512, sparse=cast == "sparsevec", concurrently=False)
    sql = sql.replace(corpus.hnsw_index(dataset_id), f"bench_{cast}_{dataset_id}")
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(sql)
        cursor.execute("ANALYZE datasets_dataindex")
    corpus.log(f"also indexed over {cast}")


def child(args) -> None:
    import django

    os.environ["DATABASE_URL"] = args.database_url
    django.setup()
    from django.core.management import call_command

    from bench import search_corpus as corpus

    call_command("migrate", verbosity=0)
    load_before = [round(x, 2) for x in os.getloadavg()]
    loaded = corpus.load_corpus(chunks=args.chunks, corpus="prose")
    if args.also_index:
        also_index(loaded.dataset.id, args.also_index)
    modes = tuple(args.modes.split(","))
    trees = {"before": Path(args.before_tree), "after": ROOT}
    rounds = []
    for number in range(args.rounds):
        figures = {}
        for side, tree in trees.items():  # the same order every round: before, then after
            with corpus.server(args.database_url, root=tree) as url:
                figures[side] = corpus.latency(url, loaded, queries=args.queries, modes=modes)
            corpus.log(f"  round {number + 1}, {side}: " + ", ".join(
                f"{mode} p50 {f['p50']} ms (server {f['server_cpu_ms']} + db {f['database_cpu_ms']} ms CPU)"
                for mode, f in figures[side].items()))
        rounds.append(figures)
    medians = {
        mode: {side: {f: round(statistics.median(r[side][mode][f] for r in rounds), 2) for f in FIGURES}
               for side in trees}
        for mode in modes
    }
    print(json.dumps({"chunks": args.chunks, "queries": args.queries, "rounds": rounds, "medians": medians,
                      "load_average_before": load_before,
                      "load_average_after": [round(x, 2) for x in os.getloadavg()]}))


if __name__ == "__main__":
    main()
