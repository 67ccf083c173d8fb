"""SQLite full text: the FTS5 table `datasets_data_fts(search_words, data_id)` from migration
0003, kept in sync with `datasets_data` by triggers, ranked by `bm25()` (negated: higher is
better).

Each word becomes an FTS5 string ("…", inner quotes doubled), the strings OR-ed and restricted
to the `search_words` column: user text never reaches FTS5's query syntax.
"""

from django.db import connection

from datasets.models import Data
from datasets.search.fulltext import TextHit, query_terms

FTS_TABLE = "datasets_data_fts"


def match_expression(words: list[str]) -> str:
    strings = ['"' + word.replace('"', '""') + '"' for word in query_terms(words)]
    return "search_words : (" + " OR ".join(strings) + ")"


class SqliteFullText:
    def recall(
        self, *, dataset_ids: list[str], words: list[str], limit: int, collection_ids: list[str] | None = None
    ) -> list[TextHit]:
        if not dataset_ids or limit <= 0 or collection_ids == [] or not query_terms(words):
            return []
        table = connection.ops.quote_name(Data._meta.db_table)
        where = [f"{FTS_TABLE} MATCH %s", f"d.dataset_id IN ({', '.join(['%s'] * len(dataset_ids))})"]
        params: list = [match_expression(words), *dataset_ids]
        if collection_ids is not None:
            where.append(f"d.collection_id IN ({', '.join(['%s'] * len(collection_ids))})")
            params.extend(collection_ids)
        # bm25 weights: search_words counts, the data_id column (only there for the triggers) not.
        sql = (
            f"SELECT d.id, bm25({FTS_TABLE}, 1.0, 0.0) AS rank FROM {FTS_TABLE} "
            f"JOIN {table} AS d ON d.id = {FTS_TABLE}.data_id "
            f"WHERE {' AND '.join(where)} ORDER BY rank, d.id LIMIT %s"
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, [*params, int(limit)])
            return [TextHit(data_id=data_id, score=-float(rank)) for data_id, rank in cursor.fetchall()]
