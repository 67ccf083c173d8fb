"""The built-in embedding's per-dataset HNSW indexes over `sparsevec` instead of `halfvec`
(PostgreSQL only).

The built-in lexical embedding sets one of its 512 dimensions per distinct word: a 1,000-character
chunk has ~70 non-zero values, a question 2–10. Stored as `sparsevec` its index is 2.7× smaller
and a search walks it with ~30 % less CPU, at the same recall (docs/benchmarks.md, "The
built-in embedding's index over sparsevec"); searches now cast its vectors so
(datasets/search/vector/pgvector.py), so the indexes built over `halfvec` by 0009 would no
longer be used. Here each one is built again over `sparsevec`, with ef_construction 128 (as
pgvector_indexes.py builds them now); indexes of other models stay.

Cost: one build per such dataset, with `maintenance_work_mem` raised for this transaction
(about 1.2 s of CPU per 1,000 vectors on this machine); writes to the vectors wait for the
migration. Reverse: built again over `halfvec`.
"""

import re

from django.conf import settings
from django.db import migrations

BUILTIN_EMBEDDING = "builtin-lexical-embedding"  # providers.registry's name, frozen here


def rebuild_over(cast_from: str, cast_to: str):
    def rebuild(apps, schema_editor):
        connection = schema_editor.connection
        if connection.vendor != "postgresql":
            return
        with connection.cursor() as cursor:
            # The per-dataset indexes (0009's names) of the built-in embedding's datasets.
            cursor.execute(
                "SELECT i.indexname, i.indexdef FROM pg_indexes i "
                "JOIN datasets_dataset d ON i.indexname LIKE 'dataindex\\_hnsw\\_' || d.id || '\\_%%' "
                "WHERE d.vector_model = %s AND i.indexdef LIKE %s ORDER BY i.indexname",
                [BUILTIN_EMBEDDING, f"%{cast_from}_cosine_ops%"],
            )
            found = cursor.fetchall()
            if found:
                cursor.execute("SELECT set_config('maintenance_work_mem', %s, true)", [settings.VECTOR_INDEX_BUILD_MEMORY])
                cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")  # CREATE INDEX refuses pending FK checks
            for name, definition in found:
                cursor.execute(f'DROP INDEX "{name}"')
                definition = re.sub(r" WITH \([^)]*\)", "", definition)  # the build options, set again below
                definition = definition.replace(f"::{cast_from}(", f"::{cast_to}(").replace(
                    f"{cast_from}_cosine_ops", f"{cast_to}_cosine_ops"
                )
                if cast_to == "sparsevec":
                    definition = definition.replace(" WHERE ", " WITH (m = 16, ef_construction = 128) WHERE ", 1)
                cursor.execute(definition)
            if found:
                cursor.execute("SET CONSTRAINTS ALL DEFERRED")  # as Django declares its foreign keys

    return rebuild


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0009_hnsw_index_per_dataset"),
    ]

    operations = [
        migrations.RunPython(rebuild_over("halfvec", "sparsevec"), rebuild_over("sparsevec", "halfvec")),
    ]
