"""The search benchmark's corpora, server and measurements (bench/search.py runs them).

Runs inside a configured Django process (the benchmark's child)."""

import ast
import contextlib
import importlib
import importlib.metadata
import math
import os
import pydoc
import socket
import statistics
import subprocess
import sys
import sysconfig
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import requests
from django.db import connection, transaction
from django.utils import timezone

from config.ids import new_object_id
from datasets.models import Collection, CollectionType, Data, DataIndex, Dataset, TrainingState
from datasets.search.vector import bump_vector_version
from datasets.search.vector.pgvector_indexes import forget_index_sizes, index_name, index_sql, indexed_rows
from datasets.services.bulk_writes import insert_rows
from keys.models import Team
from keys.services import create_api_key
from providers.embeddings import lexical_embedding
from providers.registry import BUILTIN_EMBEDDING, BUILTIN_LLM
from providers.words import words

ROOT = Path(__file__).resolve().parent.parent
SEED = 20241125
CHUNKS_PER_COLLECTION = 1000
BATCH = 2000


def hnsw_index(dataset_id: str) -> str:
    """The name of the dataset's 512 HNSW index."""
    return index_name(dataset_id, 512)


def hnsw_sql(dataset_id: str) -> str:
    """The dataset's 512 HNSW index as the app builds it for the built-in embedding's sparse
    vectors (in one statement, not concurrently: nothing else writes here)."""
    return index_sql(dataset_id, 512, sparse=True, concurrently=False)


def log(*parts) -> None:
    print(*parts, file=sys.stderr, flush=True)


@dataclass
class Loaded:
    team: Team
    key: str
    dataset: Dataset
    vocabulary: list[str]
    weights: np.ndarray
    index_ids: list[str] = field(default_factory=list)
    matrix: np.ndarray | None = None  # the vectors, row i = index_ids[i]
    info: dict = field(default_factory=dict)


# --- the benchmark corpora: synthetic (real words, no topic) and real prose -------------------


def stdlib_docstrings(limit_files: int = 400) -> list[str]:
    """Docstrings of the standard library's .py files (parsed, not imported)."""
    folder = Path(sysconfig.get_paths()["stdlib"])
    texts = []
    for path in sorted(folder.glob("*.py"))[:limit_files]:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except (SyntaxError, ValueError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
                doc = ast.get_docstring(node)
                if doc:
                    texts.append(doc)
    return texts


def vocabulary(texts: list[str] | None = None) -> tuple[list[str], np.ndarray]:
    """Words by frequency (seen twice or more, no numbers) in `texts`, else stdlib docstrings."""
    counts = Counter()
    for text in stdlib_docstrings() if texts is None else texts:
        counts.update(words(text))
    vocab = [w for w, n in counts.most_common() if n >= 2 and not w.isdigit()]
    freq = np.array([counts[w] for w in vocab], dtype=np.float64)
    return vocab, freq / freq.sum()


def synthetic_texts(rng, vocab, weights, count: int) -> list[str]:
    lengths = rng.integers(40, 120, size=count)
    drawn = rng.choice(len(vocab), size=int(lengths.sum()), p=weights)
    texts, at = [], 0
    for length in lengths:
        texts.append(" ".join(vocab[i] for i in drawn[at : at + length]))
        at += length
    return texts


def queries(rng, vocab, weights, count: int) -> list[str]:
    """2–4 words each, drawn from the less common words (a query names what it looks for)."""
    start = 100  # skip the most frequent words ("the", "of", "is"…)
    pool = np.array(vocab[start:])
    p = np.sqrt(weights[start:])
    p /= p.sum()
    return [" ".join(rng.choice(pool, size=int(rng.integers(2, 5)), p=p, replace=False)) for _ in range(count)]


def load_corpus(*, chunks: int, corpus: str = "synthetic") -> Loaded:
    """CHUNKS chunks in bulk with their built-in vectors, the HNSW index built after the load.

    corpus "prose": real prose found on this machine (bench/prose_corpus.py); "synthetic":
    words drawn independently with their real frequencies (no topic: HNSW's worst case). The
    random-word queries draw from the corpus's own vocabulary either way."""
    rng = np.random.default_rng(SEED)
    if corpus == "prose":
        from bench.prose_corpus import prose_chunks

        prose = prose_chunks(chunks, seed=SEED)
        chunks = len(prose)
        vocab, weights = vocabulary(prose)
        next_texts = lambda start, count: prose[start : start + count]  # noqa: E731
    else:
        vocab, weights = vocabulary()
        next_texts = lambda start, count: synthetic_texts(rng, vocab, weights, count)  # noqa: E731
    team = Team.objects.create(name="bench")
    _, key = create_api_key(team=team, name="bench")
    dataset = Dataset.objects.create(team=team, name="synthetic", vector_model=BUILTIN_EMBEDDING, agent_model=BUILTIN_LLM)
    loaded = Loaded(team=team, key=key, dataset=dataset, vocabulary=vocab, weights=weights)
    postgres = connection.vendor == "postgresql"

    matrices, collection_id = [], None
    started = time.perf_counter()
    ready = TrainingState.READY.value
    for start in range(0, chunks, BATCH):
        texts = next_texts(start, min(BATCH, chunks - start))
        vectors = lexical_embedding(texts)
        now = timezone.now()
        datas, indexes = [], []  # rows in bulk_writes' column order: the app's own COPY path
        for offset, (text, vector) in enumerate(zip(texts, vectors)):
            number = start + offset
            if number % CHUNKS_PER_COLLECTION == 0:
                collection_id = Collection.objects.create(
                    team=team, dataset=dataset, type=CollectionType.TEXT, name=f"part-{number // CHUNKS_PER_COLLECTION}.txt"
                ).pk
            data_id, index_id = new_object_id(), new_object_id()
            datas.append((data_id, team.pk, dataset.pk, collection_id, text, "", number, " ".join(words(text)), ready,
                          0, "", None, "", "", now, now))
            indexes.append((index_id, data_id, dataset.pk, collection_id, "default", text, vector, len(vector)))
        with transaction.atomic():
            insert_rows(data=datas, indexes=indexes)
        loaded.index_ids += [row[0] for row in indexes]
        matrices.append(vectors)
        if (start // BATCH) % 10 == 0:
            log(f"  {start + len(texts):,} chunks ({time.perf_counter() - started:.0f} s)")
    loaded.matrix = np.vstack(matrices)
    bump_vector_version(dataset_ids=[dataset.id])
    loaded.info["load_seconds"] = round(time.perf_counter() - started, 1)
    loaded.info["corpus"] = corpus
    if postgres:
        started = time.perf_counter()
        with connection.cursor() as cursor:
            # The graph must fit in maintenance_work_mem or the build slows down several-fold:
            # ~2.6 KB per 512-dimension vector.
            cursor.execute(f"SET maintenance_work_mem = '{max(2, math.ceil(chunks * 3.2 / 1e6))}GB'")
            cursor.execute("SET max_parallel_maintenance_workers = 1")
            cursor.execute(hnsw_sql(dataset.id))
            cursor.execute("ANALYZE")
        forget_index_sizes()  # (the recall searches a dataset through its index once it knows of it)
        loaded.info["hnsw_build_seconds"] = round(time.perf_counter() - started, 1)
    return loaded


# --- real documentation for the quality figure ----------------------------------------------

STDLIB_SOURCES = (
    "json", "csv", "argparse", "logging", "datetime", "re", "pathlib", "subprocess", "threading",
    "collections", "shutil", "random", "hashlib", "sqlite3", "urllib.parse", "smtplib", "gzip",
    "zipfile", "pickle", "timeit", "tempfile", "decimal", "statistics", "base64", "fnmatch",
    "pprint", "heapq", "configparser", "uuid", "tomllib", "difflib", "textwrap", "bisect", "copy",
    "os", "fractions", "itertools", "functools", "glob", "socket", "struct", "enum", "dataclasses",
    "inspect", "string", "calendar", "math", "io", "unittest", "contextlib",
)
PACKAGE_SOURCES = (
    "requests", "httpx", "beautifulsoup4", "uvicorn", "hypothesis", "pytest", "numpy", "pypdf",
    "python-docx", "psycopg", "charset-normalizer", "openai", "Django", "djangorestframework",
    "lxml", "pgvector", "django-tasks",
)
MAX_SOURCE_CHARS = 150_000


def real_documents() -> dict[str, str]:
    docs = {}
    for name in STDLIB_SOURCES:
        module = importlib.import_module(name)
        docs[f"stdlib:{name}"] = pydoc.render_doc(module, renderer=pydoc.plaintext)[:MAX_SOURCE_CHARS]
    for name in PACKAGE_SOURCES:
        meta = importlib.metadata.distribution(name).metadata
        text = meta.get_payload() or meta.get("Description") or ""
        docs[f"pypi:{name}"] = f"{meta.get('Summary', '')}\n\n{text}"[:MAX_SOURCE_CHARS]
    return docs


def load_real_docs(*, team: Team) -> Loaded:
    from datasets.ingestion.chunking import ChunkSettings, split_text

    dataset = Dataset.objects.create(team=team, name="docs", vector_model=BUILTIN_EMBEDDING, agent_model=BUILTIN_LLM)
    total = 0
    for source, text in real_documents().items():
        collection = Collection.objects.create(team=team, dataset=dataset, type=CollectionType.TEXT, name=source)
        chunks = [c for c in split_text(text, ChunkSettings()) if c.text.strip()]
        vectors = lexical_embedding([c.text for c in chunks])
        datas, indexes = [], []
        for chunk, vector in zip(chunks, vectors):
            data = Data(team=team, dataset=dataset, collection=collection, q=chunk.text, chunk_index=chunk.index,
                        search_words=" ".join(words(chunk.text)), training_state=TrainingState.READY)
            datas.append(data)
            indexes.append(DataIndex(data=data, dataset=dataset, collection=collection, text=chunk.text,
                                     embedding=vector, dimensions=len(vector)))
        with transaction.atomic():
            Data.objects.bulk_create(datas)
            DataIndex.objects.bulk_create(indexes)
        total += len(datas)
    bump_vector_version(dataset_ids=[dataset.id])
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    return Loaded(team=team, key="", dataset=dataset, vocabulary=[], weights=np.zeros(0),
                  info={"sources": len(STDLIB_SOURCES) + len(PACKAGE_SOURCES), "chunks": total})


# --- recall of the HNSW channel -------------------------------------------------------------


def doc_like_queries(rng, loaded: Loaded, count: int) -> tuple[list[str], list[str]]:
    """8 words drawn from a random chunk: a query close to something stored, as real questions
    are to the chunks that answer them. Returns the queries and their chunks' index ids."""
    rows = rng.choice(len(loaded.index_ids), size=count, replace=False)
    ids = [loaded.index_ids[r] for r in rows]
    texts = dict(DataIndex.objects.filter(pk__in=ids).values_list("id", "text"))
    return [" ".join(rng.choice(texts[i].split(), size=8, replace=False)) for i in ids], ids


def hnsw_recall(loaded: Loaded, *, queries: int) -> dict:
    """recall@10 of the pgvector channel against exact cosine, for two kinds of queries, as
    shipped (ef_search from the limit and the table's size) and, as a what-if, with a fixed
    larger ef_search."""
    from datasets.search.vector import pgvector

    rng = np.random.default_rng(SEED + 1)
    doc_like, sources = doc_like_queries(rng, loaded, queries)
    kinds = {"random_words": globals()["queries"](rng, loaded.vocabulary, loaded.weights, queries), "doc_like": doc_like}
    row_of = {index_id: row for row, index_id in enumerate(loaded.index_ids)}
    backend = pgvector.PgVectorBackend()
    shipped = pgvector.ef_search_for
    figures = {"queries": queries}
    vectors_of = {kind: lexical_embedding(texts) for kind, texts in kinds.items()}
    # The exact top 10 of each query, computed once (one pass over the matrix per query: at 1M
    # chunks a pass is 2 GB): (its index ids, the 10th score).
    exact_top = {}
    for kind, vectors in vectors_of.items():
        for number, vector in enumerate(vectors):
            exact = loaded.matrix @ vector
            top10 = np.argsort(-exact, kind="stable")[:10]
            exact_top[kind, number] = ({loaded.index_ids[row] for row in top10}, exact[top10[-1]])
    try:
        for ef in (None, 400, 800):
            if ef is not None:
                pgvector.ef_search_for = lambda limit, rows=0, ef=ef: ef
            for kind, vectors in vectors_of.items():
                for limit in (100, 10):  # 100: as embedding mode asks; 10: the bare top 10
                    found, strict, source_found = [], [], []
                    for number, vector in enumerate(vectors):
                        exact_ids, tenth = exact_top[kind, number]
                        hits = backend.recall(dataset_ids=[loaded.dataset.id], query=vector, limit=limit, sparse=True)[:10]
                        scores = loaded.matrix[[row_of[h.index_id] for h in hits]] @ vector if hits else []
                        # ann-benchmarks' definition: a hit is within the 10th true neighbour's
                        # distance (ties at the 10th place count); strict: the exact top-10 ids.
                        found.append(sum(1 for score in scores if score >= tenth - 1e-5) / 10)
                        strict.append(len(exact_ids & {h.index_id for h in hits}) / 10)
                        if kind == "doc_like":  # is the chunk the words came from among the 10?
                            source_found.append(sources[number] in {h.index_id for h in hits})
                    label = f"ef_{ef}" if ef else f"shipped_ef_{shipped(limit, indexed_rows([loaded.dataset.id], 512))}"
                    figures[f"{kind}/limit_{limit}/{label}"] = round(float(np.mean(found)), 4)
                    figures[f"{kind}/limit_{limit}/{label}/strict"] = round(float(np.mean(strict)), 4)
                    if source_found:
                        figures[f"doc_like_source_in_top10/limit_{limit}/{label}"] = round(float(np.mean(source_found)), 4)
            log(f"  recall: {figures}")
    finally:
        pgvector.ef_search_for = shipped
    return figures


# --- the server and the latency -------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextlib.contextmanager
def server(database_url: str, root: Path = ROOT):
    """`uvicorn config.asgi:application` of the source tree `root` (this one by default) on
    `database_url`; yields its base URL."""
    port = _free_port()
    env = {**os.environ, "DATABASE_URL": database_url, "API_KEY_RATE": "", "LOG_LEVEL": "WARNING"}
    command = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
               "--port", str(port), "--lifespan", "off", "--log-level", "warning", "--no-access-log"]
    process = subprocess.Popen(command, cwd=root, env=env)
    url = f"http://127.0.0.1:{port}"
    SERVER_PIDS[url] = process.pid
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if requests.get(f"{url}/api/schema/", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                time.sleep(0.2)
        else:
            raise RuntimeError("the server did not start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=20)


SERVER_PIDS: dict[str, int] = {}


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc): robust to a busy machine, unlike
    wall-clock latency."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_pids() -> list[int]:
    """The local PostgreSQL server's processes (postmaster and its children: backends, the
    parallel workers…), found through its data directory's postmaster.pid; [] for SQLite or a
    server whose data directory is not readable here."""
    if connection.vendor != "postgresql":
        return []
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW data_directory")
            folder = cursor.fetchone()[0]
        postmaster = int(Path(folder, "postmaster.pid").read_text().split()[0])
    except (OSError, ValueError, IndexError, Exception):  # not superuser, remote, unreadable
        return []
    pids = [postmaster]
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            if int(stat.read_text().rsplit(")", 1)[1].split()[1]) == postmaster:
                pids.append(int(stat.parent.name))
        except (OSError, ValueError, IndexError):
            continue
    return pids


def database_cpu_seconds() -> float:
    """CPU of the database server's live processes (a backend that exited takes its CPU with
    it: the pool keeps the benchmark's connections open, so none should)."""
    total = 0.0
    for pid in database_pids():
        try:
            total += cpu_seconds(pid)
        except (OSError, ValueError, IndexError):
            continue
    return total


def _post(session, url, key, body) -> dict:
    response = session.post(f"{url}/api/core/dataset/searchTest", json=body,
                            headers={"Authorization": f"Bearer {key}"}, timeout=60)
    response.raise_for_status()
    return response.json()["data"]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(p / 100 * len(ordered)) - 1))]


def latency(url: str, loaded: Loaded, *, queries: int,
            modes: tuple[str, ...] = ("embedding", "fullTextRecall", "mixedRecall")) -> dict:
    rng = np.random.default_rng(SEED + 2)
    texts = globals()["queries"](rng, loaded.vocabulary, loaded.weights, queries + 20)
    session = requests.Session()
    out = {}
    for mode in modes:
        for text in texts[:20]:  # warm-up: connections, caches, the NumPy vectors on SQLite
            _post(session, url, loaded.key, {"datasetId": loaded.dataset.id, "text": text, "searchMode": mode})
        times, empty = [], 0
        cpu_before, db_cpu_before = cpu_seconds(SERVER_PIDS[url]), database_cpu_seconds()
        for text in texts[20:]:
            started = time.perf_counter()
            data = _post(session, url, loaded.key, {"datasetId": loaded.dataset.id, "text": text, "searchMode": mode})
            times.append((time.perf_counter() - started) * 1000)
            empty += not data["list"]
        cpu_ms = (cpu_seconds(SERVER_PIDS[url]) - cpu_before) * 1000 / len(times)
        db_cpu_ms = (database_cpu_seconds() - db_cpu_before) * 1000 / len(times)
        out[mode] = {"p50": round(statistics.median(times), 2), "p99": round(percentile(times, 99), 2),
                     "mean": round(statistics.fmean(times), 2), "server_cpu_ms": round(cpu_ms, 2),
                     "database_cpu_ms": round(db_cpu_ms, 2), "load_average": [round(x, 2) for x in os.getloadavg()],
                     "n": len(times), "empty": empty}
    return out


# --- quality ----------------------------------------------------------------------------------


def quality(url: str, key: str, docs: Loaded) -> dict:
    from bench.search_questions import QUESTIONS

    session = requests.Session()
    out = {"questions": len(QUESTIONS)}
    for mode in ("embedding", "fullTextRecall", "mixedRecall"):
        at1 = at5 = 0
        misses = []
        for question, source in QUESTIONS:
            data = _post(session, url, key, {"datasetId": docs.dataset.id, "text": question, "searchMode": mode,
                                             "limit": 20000, "topK": 5})
            names = [hit["sourceName"] for hit in data["list"][:5]]
            at1 += bool(names) and names[0] == source
            at5 += source in names
            if source not in names:
                misses.append(question)
        out[mode] = {"hit@1": round(at1 / len(QUESTIONS), 3), "hit@5": round(at5 / len(QUESTIONS), 3),
                     "missed@5": misses}
    return out
