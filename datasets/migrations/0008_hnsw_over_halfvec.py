"""The HNSW indexes of the vectors rebuilt over `halfvec` (PostgreSQL; nothing on SQLite).

Each per-size index `dataindex_embedding_hnsw_<size>` (the built-in 512 and any size created
since) is dropped and built again over `embedding::halfvec(<size>)` with `halfvec_cosine_ops`:
same recall, half the size, less CPU per query and per insert (datasets/search/vector/
pgvector.py says why, with the figures). The stored vectors do not change: only the index does.

Cost: one index build per size present — about 35 s per 100,000 vectors on this machine with
`maintenance_work_mem` 1 GB, raised for this transaction as 0007 does; searches made during the
build wait for it. Reverse: the `vector` indexes built again.
"""

import re

from django.db import migrations

BUILD_MEMORY_KB = 1024 * 1024  # 1 GB: the graph of ~400,000 built-in vectors
INDEX_NAME = re.compile(r"^dataindex_embedding_hnsw_(\d+)$")


def create_sql(dimensions: int, vector_type: str) -> str:
    return (
        f"CREATE INDEX IF NOT EXISTS dataindex_embedding_hnsw_{dimensions} ON datasets_dataindex "
        f"USING hnsw ((embedding::{vector_type}({dimensions})) {vector_type}_cosine_ops) "
        f"WHERE dimensions = {dimensions}"
    )


def rebuild(vector_type: str, max_dimensions: int):
    def run(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT indexname FROM pg_indexes WHERE tablename = 'datasets_dataindex' "
                "AND indexname LIKE 'dataindex_embedding_hnsw_%'"
            )
            sizes = sorted(int(m.group(1)) for (name,) in cursor.fetchall() if (m := INDEX_NAME.match(name)))
            cursor.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'")
            if cursor.fetchone()[0] < BUILD_MEMORY_KB:
                cursor.execute(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY_KB}kB'")
            for dimensions in sizes:
                cursor.execute(f"DROP INDEX dataindex_embedding_hnsw_{dimensions}")
                if dimensions <= max_dimensions:
                    cursor.execute(create_sql(dimensions, vector_type))

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0007_builtin_embedding_without_stopwords"),
    ]

    operations = [
        migrations.RunPython(rebuild("halfvec", 4000), rebuild("vector", 2000)),
    ]
