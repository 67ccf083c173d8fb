"""HNSW build parameters (m, ef_construction) against recall@10, query cost and insert cost, on
real prose, with the built-in 512-dimension embedding, on PostgreSQL + pgvector.

    .venv/bin/python bench/hnsw_params.py                  # 100,000 prose chunks, six parameter sets
    .venv/bin/python bench/hnsw_params.py --chunks 20000 --params 16/64,8/32 --queries 100

Options: --chunks N (prose chunks loaded, default 100,000) · --params m/efc,… (default
16/64,12/48,8/64,8/32,12/32,16/32; 16/64 is pgvector's default, as shipped for dense models,
16/128 the built-in embedding's; each over `sparsevec`, as the built-in embedding's index is
shipped; m/efc/halfvec or m/efc/vector: over
`embedding::halfvec(512)` — dense models' index — or `::vector(512)`) · --ef-search
100,200,400 · --queries N (per query kind, default 200) · --inserts N (new vectors for the
insert cost, default 2,000) · --build-workers N (max_parallel_maintenance_workers for the
build, default 0: the backend alone, so its CPU is the build's) · --shared-buffers 1GB.

One throwaway PostgreSQL 18 + pgvector (bench/databases.py, `shared_buffers` 1 GB so the index
stays in PostgreSQL's buffer cache). Setup (bench/search_corpus.py's `load_corpus`): `migrate`,
then CHUNKS chunks of real prose found on this machine (bench/prose_corpus.py) with their
built-in vectors. Then, once, the insert cost without any HNSW index; then for each
(m, ef_construction):

1. Build: the 512 index dropped, the table vacuumed, the index built again as the migration
   builds it (`index_sql`: expression + partial, `sparsevec_cosine_ops`) `WITH (m, ef_construction)`,
   `maintenance_work_mem` 1 GB. Wall time, the backend's CPU (/proc) plus any parallel
   workers' (reaped by the postmaster: its children's CPU), the index's size.
2. Recall and query cost, per `ef_search`: the pipeline's statement (`PgVectorBackend.recall_sql`,
   limit 100, `hnsw.iterative_scan = relaxed_order`, `SET LOCAL hnsw.ef_search`), for two
   kinds of queries (search_corpus's: 8 words taken from a random chunk; 2–4 random less common
   words) — the same queries as bench/search.py's recall figure. recall@10 against exact cosine
   over the loaded matrix (NumPy), tie-aware (a returned chunk counts when its exact score
   reaches the 10th exact score: ann-benchmarks' definition) and strict (the exact top-10 ids),
   as `hnsw_recall` defines them. SQL p50 (the SELECT only, client-side) and the backend's CPU
   per query (its SET LOCALs and transaction included). After one unmeasured pass of every
   query (the index's pages into the buffer cache). The plan is checked with EXPLAIN: "exact"
   means the planner chose not to use the index at that ef_search (its costs count ef_search).
3. Insert cost: INSERTS new prose chunks (not among the loaded ones) written as the pipeline
   writes them (`datasets.services.bulk_writes.insert_rows`: binary COPY) in batches of 256 into
   the indexed table, in a transaction rolled back (the table stays the same for the next set);
   the backend's CPU per vector for the index rows' COPYs (their items are copied first, not
   counted).

CPU is the backend's time on a CPU from /proc/PID/schedstat (nanoseconds; /proc/PID/stat's 10 ms
ticks where schedstat is missing). The table is printed in Markdown, then one JSON line with every figure. No assertion on any
time: the figures are for reading. Recall does not depend on the machine's load; CPU per
operation from /proc hardly does; wall times do (the load average is printed).

Runs in a child process (`--child`), since Django is configured once per process.
"""

import argparse
import json
import os
import statistics
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import child_result_on_postgres  # noqa: E402 (after the path insert)

DEFAULT_PARAMS = "16/64,12/48,8/64,8/32,12/32,16/32"
LIMIT = 100  # what embedding mode asks the vector channel for
INSERT_BATCH = 256
KINDS = ("chunk_like", "random_words")


# --- the parent: one throwaway PostgreSQL, one child ----------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chunks", type=int, default=100_000)
    parser.add_argument("--params", default=DEFAULT_PARAMS, help="m/ef_construction pairs, comma-separated")
    parser.add_argument("--ef-search", default="100,200,400")
    parser.add_argument("--queries", type=int, default=200, help="queries per kind")
    parser.add_argument("--inserts", type=int, default=2000, help="new vectors inserted (rolled back) per set")
    parser.add_argument("--build-workers", type=int, default=0, help="max_parallel_maintenance_workers")
    parser.add_argument("--shared-buffers", default="1GB")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--database-url", default="", help=argparse.SUPPRESS)
    args = parser.parse_args()
    try:
        args.param_sets = [parse_set(pair) for pair in args.params.split(",")]
        args.ef_list = [int(x) for x in args.ef_search.split(",")]
    except ValueError:
        parser.error("--params takes m/ef_construction pairs (16/64,8/32) and --ef-search integers")
    if any(m < 2 or efc < 2 * m for m, efc, _ in args.param_sets):
        parser.error("each --params set is m/ef_construction[/vector] with m ≥ 2 and ef_construction ≥ 2·m (pgvector's rule)")
    if args.child:
        return child(args)

    result = child_result_on_postgres(
        __file__,
        ["--chunks", str(args.chunks), "--params", args.params, "--ef-search", args.ef_search,
         "--queries", str(args.queries), "--inserts", str(args.inserts), "--build-workers", str(args.build_workers)],
        prefix="bench-hnsw-", shared_buffers=args.shared_buffers,
    )
    print(render(result))
    print(json.dumps(result))


VECTOR_TYPES = ("sparsevec", "halfvec", "vector")


def parse_set(text: str) -> tuple[int, int, str]:
    """"16/64" → (16, 64, "sparsevec"), as shipped for the built-in embedding; "16/64/halfvec"
    (as shipped for dense models, and for every model before) or "16/64/vector": the index built
    over `embedding::halfvec(512)` (2 bytes a dimension) or `::vector(512)` (4) and searched
    with the same cast."""
    parts = text.split("/")
    if len(parts) not in (2, 3) or (len(parts) == 3 and parts[2] not in VECTOR_TYPES):
        raise ValueError(text)
    return int(parts[0]), int(parts[1]), parts[2] if len(parts) == 3 else "sparsevec"


def set_name(s: dict) -> str:
    return f"{s['m']}, {s['ef_construction']}, {s.get('type', 'halfvec')}"


def render(result: dict) -> str:
    lines = [
        f"{result['chunks']:,} prose chunks · {result['started_utc']} – {result['finished_utc'][-8:]} UTC · "
        f"load average {result['load_average_before']} before, {result['load_average_after']} after · "
        f"{result['queries']} queries per kind, limit {LIMIT}, iterative scan · "
        f"insert: {result['inserts']} vectors in batches of {INSERT_BATCH}, rolled back · "
        f"no HNSW index: {result['insert_without_hnsw_ms']} ms CPU per vector",
        "",
        "| m, ef_construction | build s | build CPU s | index MB | insert CPU ms/vector |",
        "|---|--:|--:|--:|--:|",
    ]
    for s in result["sets"]:
        lines.append(f"| {set_name(s)} | {s['build_seconds']} | {s['build_cpu_seconds']} | "
                     f"{s['index_mb']} | {s['insert_cpu_ms_per_vector']} |")
    lines += [
        "",
        "| m, ef_construction | ef_search | plan | recall@10 chunk-like (tie / strict) | "
        "recall@10 random words (tie / strict) | SQL p50 ms (chunk / random) | DB CPU ms/query (chunk / random) |",
        "|---|--:|---|---|---|---|---|",
    ]
    for s in result["sets"]:
        for ef, figures in s["ef_search"].items():
            c, r = figures["chunk_like"], figures["random_words"]
            lines.append(
                f"| {set_name(s)} | {ef} | {figures['plan']} | {c['recall']:.3f} / {c['strict']:.3f} | "
                f"{r['recall']:.3f} / {r['strict']:.3f} | {c['p50_ms']} / {r['p50_ms']} | {c['cpu_ms']} / {r['cpu_ms']} |"
            )
    return "\n".join(lines)


# --- the child: the measurements ------------------------------------------------------------


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


def load_average() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


def now_utc() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M:%S")


@dataclass
class Query:
    vector: object  # np.ndarray, the built-in embedding of the query
    top10: set  # index ids of the exact top 10
    tenth: float  # the exact 10th score


def child(args) -> None:
    import django

    os.environ["DATABASE_URL"] = args.database_url
    django.setup()
    import numpy as np
    from django.core.management import call_command

    from bench import prose_corpus
    from bench import search_corpus as corpus
    from providers.embeddings import lexical_embedding

    call_command("migrate", verbosity=0)
    result = {"chunks": args.chunks, "queries": args.queries, "inserts": args.inserts,
              "build_workers": args.build_workers, "started_utc": now_utc(), "load_average_before": load_average()}

    # The loaded chunks and the new ones inserted later, gathered once: prose_chunks shuffles the
    # whole corpus, then cuts, so its first CHUNKS of CHUNKS + INSERTS are load_corpus's chunks.
    gathered = prose_corpus.prose_chunks(args.chunks + args.inserts, seed=corpus.SEED)
    if len(gathered) < args.chunks + INSERT_BATCH:
        raise SystemExit(f"only {len(gathered):,} prose chunks on this machine: use --chunks ≤ {len(gathered) - INSERT_BATCH:,}")
    shipped_prose_chunks = prose_corpus.prose_chunks
    prose_corpus.prose_chunks = lambda limit, *, seed: gathered[:limit]  # load_corpus would gather them again
    try:
        started = time.perf_counter()
        loaded = corpus.load_corpus(chunks=args.chunks, corpus="prose")
    finally:
        prose_corpus.prose_chunks = shipped_prose_chunks
    new_texts = gathered[args.chunks:]
    result["setup"] = {**loaded.info, "seconds": round(time.perf_counter() - started, 1)}
    log(f"setup: {result['setup']}")

    # The queries of hnsw_recall (same seed, same order), their exact answers computed once.
    rng = np.random.default_rng(corpus.SEED + 1)
    chunk_like, _ = corpus.doc_like_queries(rng, loaded, args.queries)
    texts = {"chunk_like": chunk_like, "random_words": corpus.queries(rng, loaded.vocabulary, loaded.weights, args.queries)}
    queries: dict[str, list[Query]] = {}
    for kind, kind_texts in texts.items():
        queries[kind] = []
        for vector in lexical_embedding(kind_texts):
            if not np.any(vector):
                continue  # no direction (recall() answers nothing): not a query
            exact = loaded.matrix @ vector
            top10 = np.argsort(-exact, kind="stable")[:10]
            queries[kind].append(Query(vector=vector, top10={loaded.index_ids[r] for r in top10}, tenth=float(exact[top10[-1]])))
    result["queries_used"] = {kind: len(found) for kind, found in queries.items()}

    drop_index(loaded)
    result["insert_without_hnsw_ms"] = insert_cost(loaded, new_texts)["cpu_ms_per_vector"]
    log(f"insert without HNSW: {result['insert_without_hnsw_ms']} ms CPU per vector")

    result["sets"] = []
    for m, ef_construction, vector_type in args.param_sets:
        figures = {"m": m, "ef_construction": ef_construction, "type": vector_type, "load_average_at_start": load_average()}
        figures.update(build(loaded, m, ef_construction, vector_type, workers=args.build_workers))
        log(f"m {m}, ef_construction {ef_construction}: build {figures}")
        row_of = {index_id: row for row, index_id in enumerate(loaded.index_ids)}
        for query in queries["chunk_like"] + queries["random_words"]:  # warm: the index into the buffer cache
            search(loaded, query.vector, max(args.ef_list), vector_type)
        figures["ef_search"] = {}
        for ef in args.ef_list:
            at_ef = {"plan": plan(loaded, queries["chunk_like"][0].vector, ef, vector_type)}
            for kind in KINDS:
                at_ef[kind] = recall_and_cost(loaded, queries[kind], ef, row_of, vector_type)
            figures["ef_search"][str(ef)] = at_ef
            log(f"  ef_search {ef}: {at_ef}")
        insert = insert_cost(loaded, new_texts)
        figures["insert_cpu_ms_per_vector"] = insert["cpu_ms_per_vector"]
        figures["insert_wall_ms_per_vector"] = insert["wall_ms_per_vector"]
        log(f"  insert: {insert}")
        result["sets"].append(figures)

    result["finished_utc"] = now_utc()
    result["load_average_after"] = load_average()
    print(json.dumps(result))


# --- PostgreSQL's side ----------------------------------------------------------------------


def backend_pid() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def backend_cpu_seconds(pid: int) -> float:
    """A process's CPU time in nanosecond resolution (/proc/PID/schedstat: time on a CPU),
    else user + system ticks (search_corpus.cpu_seconds: 10 ms steps, too coarse for
    a 2,000-row COPY without an HNSW index)."""
    from bench.search_corpus import cpu_seconds

    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return cpu_seconds(pid)


def reaped_children_cpu_seconds(pid: int) -> float:
    """CPU of a process's children that exited and were waited for (Linux /proc: cutime +
    cstime) — for the postmaster, the parallel build workers once they are gone."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[13]) + int(fields[14])) / os.sysconf("SC_CLK_TCK")


def drop_index(loaded) -> None:
    """The dataset's 512 HNSW index dropped and the table vacuumed (the dead rows of the rolled-back
    inserts gone before the next build)."""
    from django.db import connection

    from bench.search_corpus import hnsw_index
    from datasets.search.vector.pgvector_indexes import forget_index_sizes

    with connection.cursor() as cursor:
        cursor.execute(f'DROP INDEX IF EXISTS "{hnsw_index(loaded.dataset.id)}"')
        cursor.execute("VACUUM ANALYZE datasets_dataindex")
    forget_index_sizes()


def index_sql_as(dataset_id: str, vector_type: str) -> str:
    """The app's index statement for the dataset's 512 vectors, over `vector_type`."""
    from datasets.search.vector.pgvector_indexes import SPARSE_BUILD, index_sql

    sql = index_sql(dataset_id, 512, sparse=vector_type == "sparsevec", concurrently=False)
    sql = sql.replace(SPARSE_BUILD, "")  # (each set's own m and ef_construction are added)
    return sql.replace("halfvec", "vector") if vector_type == "vector" else sql


def recall_sql_as(dataset_id: str, vector, vector_type: str) -> tuple[str, list]:
    """The pipeline's vector statement (limit 100), over `vector_type`."""
    from datasets.search.vector.pgvector import PgVectorBackend

    sql, params = PgVectorBackend().recall_sql(
        dataset_ids=[dataset_id], query=vector, limit=LIMIT, sparse=vector_type == "sparsevec"
    )
    return (sql.replace("halfvec", "vector") if vector_type == "vector" else sql), params


def build(loaded, m: int, ef_construction: int, vector_type: str, *, workers: int) -> dict:
    """The index dropped and built again with (m, ef_construction) over `vector_type`: wall
    time, CPU, size."""
    from django.db import connection

    from bench.search_corpus import database_pids, hnsw_index
    from datasets.search.vector.pgvector_indexes import forget_index_sizes

    drop_index(loaded)
    sql = index_sql_as(loaded.dataset.id, vector_type).replace(" WHERE ", f" WITH (m = {m}, ef_construction = {ef_construction}) WHERE ", 1)
    postmaster = database_pids()[0]
    pid = backend_pid()
    with connection.cursor() as cursor:
        cursor.execute("SET maintenance_work_mem = '1GB'")
        cursor.execute(f"SET max_parallel_maintenance_workers = {int(workers)}")
        cpu, children, started = backend_cpu_seconds(pid), reaped_children_cpu_seconds(postmaster), time.perf_counter()
        cursor.execute(sql)
        seconds = time.perf_counter() - started
        cpu = backend_cpu_seconds(pid) - cpu + reaped_children_cpu_seconds(postmaster) - children
        cursor.execute("RESET maintenance_work_mem")
        cursor.execute("RESET max_parallel_maintenance_workers")
        cursor.execute("ANALYZE datasets_dataindex")
        cursor.execute("SELECT pg_relation_size(%s::regclass)", [hnsw_index(loaded.dataset.id)])
        size = cursor.fetchone()[0]
    forget_index_sizes()  # (the recall searches through an index once this process knows of it)
    return {"build_seconds": round(seconds, 1), "build_cpu_seconds": round(cpu, 1), "index_mb": round(size / 2**20)}


def search(loaded, vector, ef: int, vector_type: str) -> tuple[list[tuple], float]:
    """The pipeline's vector statement at `ef`: its rows (id, data_id, distance) and the
    SELECT's time in ms."""
    from django.db import connection, transaction

    sql, params = recall_sql_as(loaded.dataset.id, vector, vector_type)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
        started = time.perf_counter()
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        return rows, (time.perf_counter() - started) * 1000


def plan(loaded, vector, ef: int, vector_type: str) -> str:
    """"hnsw" when the planner scans the 512 index at this ef_search, else "exact"."""
    from django.db import connection, transaction

    from bench.search_corpus import hnsw_index

    sql, params = recall_sql_as(loaded.dataset.id, vector, vector_type)
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("SET LOCAL hnsw.iterative_scan = relaxed_order")
        cursor.execute(f"SET LOCAL hnsw.ef_search = {int(ef)}")
        cursor.execute(f"EXPLAIN {sql}", params)
        text = "\n".join(row[0] for row in cursor.fetchall())
    return "hnsw" if hnsw_index(loaded.dataset.id) in text else "exact"


def recall_and_cost(loaded, queries: list[Query], ef: int, row_of: dict, vector_type: str) -> dict:
    """recall@10 (tie-aware, strict) against the exact answers, SQL p50, backend CPU per query."""
    import numpy as np

    pid = backend_pid()
    tie, strict, times = [], [], []
    cpu = backend_cpu_seconds(pid)
    for query in queries:
        rows, ms = search(loaded, query.vector, ef, vector_type)
        times.append(ms)
        # As recall() does: NaN distances (zero vectors) dropped, relaxed_order sorted again.
        found = sorted((row for row in rows if row[2] is not None and not np.isnan(row[2])), key=lambda row: row[2])
        top = [row[0] for row in found[:10]]
        exact = loaded.matrix[[row_of[index_id] for index_id in top]] @ query.vector if top else np.zeros(0)
        tie.append(float(np.sum(exact >= query.tenth - 1e-5)) / 10)
        strict.append(len(query.top10 & set(top)) / 10)
    cpu = backend_cpu_seconds(pid) - cpu
    if backend_pid() != pid:
        raise RuntimeError("the connection changed during the measurement")
    return {"recall": round(statistics.fmean(tie), 4), "strict": round(statistics.fmean(strict), 4),
            "p50_ms": round(statistics.median(times), 2), "cpu_ms": round(cpu * 1000 / len(queries), 2)}


def insert_cost(loaded, texts: list[str]) -> dict:
    """`texts` (new chunks) written as the pipeline writes them, in batches of 256, in a
    transaction rolled back: the backend's CPU and the wall time per vector of the index rows'
    COPYs (the items' COPY first, not counted)."""
    from django.db import transaction
    from django.utils import timezone as django_timezone

    from config.ids import new_object_id
    from datasets.models import Collection, CollectionType, IndexType
    from datasets.services.bulk_writes import insert_rows
    from providers.embeddings import lexical_embedding
    from providers.words import words

    vectors = lexical_embedding(texts)
    dataset = loaded.dataset
    pid = backend_pid()
    with transaction.atomic():
        collection = Collection.objects.create(team=loaded.team, dataset=dataset, type=CollectionType.TEXT, name="inserts")
        now = django_timezone.now()
        data_ids = [new_object_id() for _ in texts]
        insert_rows(data=[
            (data_id, loaded.team.pk, dataset.pk, collection.pk, text, "", number, " ".join(words(text)), "ready",
             0, "", None, "", "", now, now)
            for number, (data_id, text) in enumerate(zip(data_ids, texts))
        ], indexes=[])
        rows = [(new_object_id(), data_id, dataset.pk, collection.pk, IndexType.DEFAULT.value, text, vector, len(vector))
                for data_id, text, vector in zip(data_ids, texts, vectors)]
        cpu, started = backend_cpu_seconds(pid), time.perf_counter()
        for start in range(0, len(rows), INSERT_BATCH):
            insert_rows(data=[], indexes=rows[start : start + INSERT_BATCH])
        seconds, cpu = time.perf_counter() - started, backend_cpu_seconds(pid) - cpu
        transaction.set_rollback(True)
    return {"vectors": len(rows), "cpu_ms_per_vector": round(cpu * 1000 / len(rows), 3),
            "wall_ms_per_vector": round(seconds * 1000 / len(rows), 3)}


if __name__ == "__main__":
    main()
