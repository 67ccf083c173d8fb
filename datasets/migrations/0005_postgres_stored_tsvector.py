"""PostgreSQL only: a stored `search_vector` tsvector beside `search_words`, and the full-text
GIN index moved onto it.

Ranking read `to_tsvector('simple', search_words)`, which PostgreSQL re-parses for every
matching row (the expression index serves the match, never the value): hundreds of ms for a
common word at 100k chunks. A generated column is computed once per write, by PostgreSQL itself,
so nothing in the application writes it and the Django model does not declare it (Django lists
its columns in every INSERT/UPDATE, so a column it does not know is left to its default — here,
the generated value). Adding it fills it for the existing rows in the same ALTER TABLE.

SQLite keeps its FTS5 table (migration 0003): nothing to do there.
"""

from django.db import migrations

POSTGRES_FORWARD = [
    "ALTER TABLE datasets_data ADD COLUMN IF NOT EXISTS search_vector tsvector "
    "GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, search_words)) STORED",
    "DROP INDEX IF EXISTS data_search_words_gin",
    "CREATE INDEX IF NOT EXISTS data_search_vector_gin ON datasets_data USING gin (search_vector)",
]
POSTGRES_REVERSE = [
    "DROP INDEX IF EXISTS data_search_vector_gin",
    "ALTER TABLE datasets_data DROP COLUMN IF EXISTS search_vector",
    "CREATE INDEX IF NOT EXISTS data_search_words_gin ON datasets_data "
    "USING gin (to_tsvector('simple'::regconfig, search_words))",
]


def _run(statements):
    def run(apps, schema_editor):
        if schema_editor.connection.vendor == "postgresql":
            for statement in statements:
                schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0004_training_claim_index"),
    ]

    operations = [
        migrations.RunPython(_run(POSTGRES_FORWARD), _run(POSTGRES_REVERSE)),
    ]
