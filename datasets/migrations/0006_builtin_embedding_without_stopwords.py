"""Re-embed the vectors of the built-in lexical embedding, which now leaves function words out
(providers/embeddings.py, STOPWORDS).

A stored vector made with the function words and a query vector made without them would still
compare, but worse than either version alone; so every built-in vector is recomputed here from
its index text, with the embedding as it is in the code that runs this migration, and the
datasets' `vector_version` is bumped so every process's cached copy (NumPy backend) reloads.
On PostgreSQL the HNSW index of the built-in size is dropped first and built again after the
updates: one build is much cheaper than updating the graph once per row.

Cost: ~1 minute per 100,000 vectors for the embedding and updates, plus the index build
(docs/benchmarks.md). Reverse is a no-op: the earlier embedding's code is gone.
"""

from django.db import migrations
from django.db.models import F

BUILTIN_EMBEDDING = "builtin-lexical-embedding"
DIMENSIONS = 512
BATCH = 2000
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
            cursor.execute(CREATE_HNSW)
    Dataset.objects.using(alias).filter(id__in=dataset_ids).update(vector_version=F("vector_version") + 1)


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0005_postgres_stored_tsvector"),
    ]

    operations = [
        migrations.RunPython(reembed, migrations.RunPython.noop),
    ]
