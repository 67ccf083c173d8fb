"""Re-embed the vectors of the built-in lexical embedding, which now leaves function words out
(providers/embeddings.py, STOPWORDS).

A stored vector made with the function words and a query vector made without them would still
compare, but worse than either version alone; so every built-in vector is recomputed here from
its index text, with the embedding as it is in the code that runs this migration, and the
datasets' `vector_version` is bumped so every process's cached copy (NumPy backend) reloads.
On PostgreSQL the HNSW index of the built-in size is dropped first and built again after the
updates: one build is much cheaper than updating the graph once per row.

Cost at 100,000 vectors (docs/benchmarks.md): ~30 s on SQLite; on PostgreSQL the updates plus
the index build, which gets `maintenance_work_mem` 1 GB for this transaction (with the 64 MB
default the graph spills to disk and the build took ~15 minutes at load 8). Reverse is a
no-op: the earlier embedding's code is gone.
"""

from django.db import migrations
from django.db.models import F

BUILTIN_EMBEDDING = "builtin-lexical-embedding"
DIMENSIONS = 512
BATCH = 2000
BUILD_MEMORY_KB = 1024 * 1024  # 1 GB: the graph of ~400,000 built-in vectors
HNSW_INDEX = "dataindex_embedding_hnsw_512"
CREATE_HNSW = (
    f"CREATE INDEX IF NOT EXISTS {HNSW_INDEX} ON datasets_dataindex "
    f"USING hnsw ((embedding::vector({DIMENSIONS})) vector_cosine_ops) WHERE dimensions = {DIMENSIONS}"
)


def reembed(apps, schema_editor):
    from providers.embeddings import lexical_embedding

    connection = schema_editor.connection
    alias = connection.alias
    Dataset = apps.get_model("datasets", "Dataset")
    DataIndex = apps.get_model("datasets", "DataIndex")
    dataset_ids = list(Dataset.objects.using(alias).filter(vector_model=BUILTIN_EMBEDDING).values_list("id", flat=True))
    stored = DataIndex.objects.using(alias).filter(
        dataset_id__in=dataset_ids, dimensions=DIMENSIONS, embedding__isnull=False
    )
    if not dataset_ids or not stored.exists():
        return
    postgres = connection.vendor == "postgresql"
    field = DataIndex._meta.get_field("embedding")
    table = connection.ops.quote_name(DataIndex._meta.db_table)
    cast = "::vector" if postgres else ""
    with connection.cursor() as cursor:
        if postgres:
            cursor.execute(f"DROP INDEX IF EXISTS {HNSW_INDEX}")
        last = ""
        while True:
            batch = list(stored.filter(id__gt=last).order_by("id").values_list("id", "text")[:BATCH])
            if not batch:
                break
            vectors = lexical_embedding([text for _, text in batch])
            cursor.executemany(
                f"UPDATE {table} SET embedding = %s{cast} WHERE id = %s",
                [(field.get_db_prep_value(vector, connection), pk) for (pk, _), vector in zip(batch, vectors)],
            )
            last = batch[-1][0]
        if postgres:
            # The build is fast while the graph fits in maintenance_work_mem (~2.6 KB per vector
            # here) and many times slower once it spills: raise it for this transaction only.
            cursor.execute("SELECT setting::bigint FROM pg_settings WHERE name = 'maintenance_work_mem'")
            if cursor.fetchone()[0] < BUILD_MEMORY_KB:
                cursor.execute(f"SET LOCAL maintenance_work_mem = '{BUILD_MEMORY_KB}kB'")
            cursor.execute(CREATE_HNSW)
    Dataset.objects.using(alias).filter(id__in=dataset_ids).update(vector_version=F("vector_version") + 1)


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0006_qa_chunk_and_read_retries"),
    ]

    operations = [
        migrations.RunPython(reembed, migrations.RunPython.noop),
    ]
