"""PostgreSQL full text: `to_tsvector('simple', search_words)` (GIN expression index from
migration 0003) ranked by `ts_rank_cd`.

The query is built in SQL from the words' own `to_tsvector('simple', …)` lexemes, each quoted
as a tsquery literal and OR-ed: the query lexemes are normalised exactly as the indexed ones,
and no user character is ever read as tsquery syntax.
"""

from django.db import connection

from datasets.models import Data
from datasets.search.fulltext import TextHit, query_terms

_QUERY = (
    "(SELECT array_to_string(ARRAY("
    "SELECT '''' || replace(replace(lexeme, '\\', '\\\\'), '''', '''''') || '''' "
    "FROM unnest(tsvector_to_array(to_tsvector('simple', %s))) AS lexeme"
    "), ' | ')::tsquery)"
)


class PostgresFullText:
    def recall_sql(
        self, *, dataset_ids: list[str], words: list[str], limit: int, collection_ids: list[str] | None = None
    ) -> tuple[str, list]:
        table = connection.ops.quote_name(Data._meta.db_table)
        where = ["to_tsvector('simple', search_words) @@ query.q", "dataset_id = ANY(%s)"]
        params: list = [" ".join(query_terms(words)), list(dataset_ids)]
        if collection_ids is not None:
            where.append("collection_id = ANY(%s)")
            params.append(list(collection_ids))
        sql = (
            f"SELECT id, ts_rank_cd(to_tsvector('simple', search_words), query.q) AS rank "
            f"FROM {table}, {_QUERY} AS query(q) "
            f"WHERE {' AND '.join(where)} ORDER BY rank DESC, id LIMIT %s"
        )
        return sql, [*params, int(limit)]

    def recall(
        self, *, dataset_ids: list[str], words: list[str], limit: int, collection_ids: list[str] | None = None
    ) -> list[TextHit]:
        if not dataset_ids or limit <= 0 or collection_ids == [] or not query_terms(words):
            return []
        sql, params = self.recall_sql(
            dataset_ids=dataset_ids, words=words, limit=limit, collection_ids=collection_ids
        )
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            return [TextHit(data_id=data_id, score=float(rank)) for data_id, rank in cursor.fetchall()]
