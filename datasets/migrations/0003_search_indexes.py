"""The search structures Django's schema editor cannot express, per database vendor.

PostgreSQL: an HNSW index (cosine) for the built-in 512-dimension embedding — an expression +
partial index, since the `vector` column has no fixed size (other sizes get theirs when their
first vectors are written: datasets/search/vector/pgvector.py) — and a GIN index over
`to_tsvector('simple', search_words)`.
SQLite: an FTS5 table over `search_words`, kept in sync by triggers (Django emulates cascades
with DELETE statements, which fire them). The data id is an indexed FTS column so that the
triggers find a row through the full-text index instead of a scan.
"""

from django.db import migrations

POSTGRES_FORWARD = [
    "CREATE INDEX IF NOT EXISTS dataindex_embedding_hnsw_512 ON datasets_dataindex "
    "USING hnsw ((embedding::vector(512)) vector_cosine_ops) WHERE dimensions = 512",
    "CREATE INDEX IF NOT EXISTS data_search_words_gin ON datasets_data "
    "USING gin (to_tsvector('simple'::regconfig, search_words))",
]
POSTGRES_REVERSE = [
    "DROP INDEX IF EXISTS data_search_words_gin",
    "DROP INDEX IF EXISTS dataindex_embedding_hnsw_512",
]

SQLITE_FORWARD = [
    "CREATE VIRTUAL TABLE IF NOT EXISTS datasets_data_fts USING fts5(search_words, data_id)",
    "INSERT INTO datasets_data_fts (search_words, data_id) SELECT search_words, id FROM datasets_data",
    """CREATE TRIGGER IF NOT EXISTS datasets_data_fts_insert AFTER INSERT ON datasets_data BEGIN
        INSERT INTO datasets_data_fts (search_words, data_id) VALUES (new.search_words, new.id);
    END""",
    """CREATE TRIGGER IF NOT EXISTS datasets_data_fts_delete AFTER DELETE ON datasets_data BEGIN
        DELETE FROM datasets_data_fts WHERE rowid IN (
            SELECT rowid FROM datasets_data_fts
            WHERE datasets_data_fts MATCH 'data_id : "' || old.id || '"');
    END""",
    """CREATE TRIGGER IF NOT EXISTS datasets_data_fts_update AFTER UPDATE OF search_words ON datasets_data
    BEGIN
        DELETE FROM datasets_data_fts WHERE rowid IN (
            SELECT rowid FROM datasets_data_fts
            WHERE datasets_data_fts MATCH 'data_id : "' || old.id || '"');
        INSERT INTO datasets_data_fts (search_words, data_id) VALUES (new.search_words, new.id);
    END""",
]
SQLITE_REVERSE = [
    "DROP TRIGGER IF EXISTS datasets_data_fts_update",
    "DROP TRIGGER IF EXISTS datasets_data_fts_delete",
    "DROP TRIGGER IF EXISTS datasets_data_fts_insert",
    "DROP TABLE IF EXISTS datasets_data_fts",
]


def _run(statements_by_vendor):
    def run(apps, schema_editor):
        for statement in statements_by_vendor.get(schema_editor.connection.vendor, ()):
            schema_editor.execute(statement)

    return run


class Migration(migrations.Migration):

    dependencies = [
        ("datasets", "0002_knowledge_base"),
    ]

    operations = [
        migrations.RunPython(
            _run({"postgresql": POSTGRES_FORWARD, "sqlite": SQLITE_FORWARD}),
            _run({"postgresql": POSTGRES_REVERSE, "sqlite": SQLITE_REVERSE}),
        ),
    ]
