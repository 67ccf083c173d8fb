"""One HNSW index per dataset instead of one per vector size (PostgreSQL; on SQLite only the
new column).

`Dataset.vectors_changed_at` is added: pgvector builds a dataset's index once its vectors have
been still for a moment (datasets/search/vector/pgvector_indexes.py says why and how). Here,
every dataset with at least VECTOR_INDEX_MIN_ROWS vectors of a size gets its index at once,
then the per-size indexes `dataindex_embedding_hnsw_<size>` are dropped. The stored vectors do
not change.

Cost: one build per such dataset — about 0.5 s of CPU per 1,000 built-in vectors on this
machine, with `maintenance_work_mem` raised for this transaction; writes to the vectors wait
for the migration. Reverse: the per-dataset indexes dropped, the per-size ones built again.
"""

import re

from django.conf import settings
from django.db import migrations, models

HNSW_MAX_DIMENSIONS = 4000
SAFE_ID = re.compile(r"^[0-9A-Za-z]{1,40}$")


def per_dataset(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT dataset_id, dimensions FROM datasets_dataindex WHERE dimensions BETWEEN 1 AND %s "
            "GROUP BY dataset_id, dimensions HAVING count(*) >= %s ORDER BY dataset_id, dimensions",
            [HNSW_MAX_DIMENSIONS, settings.VECTOR_INDEX_MIN_ROWS],
        )
        due = cursor.fetchall()
        if due:
            cursor.execute("SELECT set_config('maintenance_work_mem', %s, true)", [settings.VECTOR_INDEX_BUILD_MEMORY])
        for dataset_id, dimensions in due:
            if not SAFE_ID.match(dataset_id):
                continue  # not an id the app makes: searched exactly, as any dataset without index
            cursor.execute(
                f'CREATE INDEX IF NOT EXISTS "dataindex_hnsw_{dataset_id}_{dimensions}" ON datasets_dataindex '
                f"USING hnsw ((embedding::halfvec({dimensions})) halfvec_cosine_ops) "
                f"WHERE dataset_id = '{dataset_id}' AND dimensions = {dimensions}"
            )
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'dataindex\\_embedding\\_hnsw\\_%%'")
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')


def per_size(apps, schema_editor):
    connection = schema_editor.connection
    if connection.vendor != "postgresql":
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE indexname LIKE 'dataindex\\_hnsw\\_%%'")
        for (name,) in cursor.fetchall():
            cursor.execute(f'DROP INDEX "{name}"')
        cursor.execute(
            "SELECT DISTINCT dimensions FROM datasets_dataindex WHERE dimensions BETWEEN 1 AND %s", [HNSW_MAX_DIMENSIONS]
        )
        sizes = {512} | {dimensions for (dimensions,) in cursor.fetchall()}
        cursor.execute("SELECT set_config('maintenance_work_mem', %s, true)", [settings.VECTOR_INDEX_BUILD_MEMORY])
        for dimensions in sorted(sizes):
            cursor.execute(
                f"CREATE INDEX IF NOT EXISTS dataindex_embedding_hnsw_{dimensions} ON datasets_dataindex "
                f"USING hnsw ((embedding::halfvec({dimensions})) halfvec_cosine_ops) WHERE dimensions = {dimensions}"
            )


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0008_hnsw_over_halfvec"),
    ]

    operations = [
        migrations.AddField(
            model_name="dataset",
            name="vectors_changed_at",
            field=models.DateTimeField(blank=True, editable=False, null=True),
        ),
        migrations.RunPython(per_dataset, per_size),
    ]
