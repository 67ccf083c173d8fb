"""The search's two reads around the recall, in SQL through Django's connection (on PostgreSQL
the vector recall reads the rows itself: one statement fewer).

Both run on every searchTest and every grounded chat turn. Through the ORM they cost more to
compile than to run (bench/search_overhead.py); here they are plain parameterised statements
over the same tables and conditions, their values converted as the ORM converts them
(config/raw_rows.py).
"""

from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple

from django.db import connection

from config.errors import BadRequest, DatasetNotFound
from config.raw_rows import value_converter
from datasets.models import Collection, CollectionType, Data, Dataset, DatasetType


class SearchedDataset(NamedTuple):
    """What the search needs of a dataset."""

    id: str
    type: str
    vector_model: str
    has_forbidden: bool  # one of its collections (not a folder) is forbidden


class Row(NamedTuple):
    """What the pipeline reads of a recalled chunk."""

    id: str
    q: str
    a: str
    chunk_index: int
    dataset_id: str
    collection_id: str
    updated_at: datetime
    source_name: str
    source_id: str


def _one_of(column: str, values: list) -> tuple[str, list]:
    """`column` is one of `values`: on PostgreSQL `= ANY(%s)`, one parameter, so the statement's
    text stays the same and psycopg reuses its parsed form (it parses afresh any statement with
    over 50 parameters); SQLite has no arrays: `IN (%s, …)`."""
    if connection.vendor == "postgresql":
        return f"{column} = ANY(%s)", [list(values)]
    return f"{column} IN ({', '.join(['%s'] * len(values))})", list(values)


def searched_datasets(*, team_id, dataset_ids: list[str]) -> list[SearchedDataset]:
    """The team's datasets asked for, in the order asked, with `has_forbidden`: in the common
    case (nothing forbidden, no filter) the search's scope needs no query of its own.

    Raises DatasetNotFound naming every id that is unknown or another team's (the same answer
    for both), and BadRequest for a folder."""
    wanted = list(dict.fromkeys(dataset_ids))
    if not wanted:
        raise DatasetNotFound("Dataset not found: (none given).")
    one_of, ids = _one_of("d.id", wanted)
    sql = (
        f"SELECT d.id, d.type, d.vector_model, EXISTS ("
        f"SELECT 1 FROM {Collection._meta.db_table} c "
        f"WHERE c.dataset_id = d.id AND c.forbid = %s AND c.type <> %s"
        f") FROM {Dataset._meta.db_table} d WHERE d.team_id = %s AND {one_of}"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, [True, CollectionType.FOLDER.value, team_id, *ids])
        found = {row[0]: SearchedDataset(row[0], row[1], row[2], bool(row[3])) for row in cursor.fetchall()}
    missing = [pk for pk in wanted if pk not in found]
    if missing:
        raise DatasetNotFound(f"Dataset not found: {', '.join(missing)}.")
    folders = [pk for pk in wanted if found[pk].type == DatasetType.FOLDER]
    if folders:
        raise BadRequest(f"datasetIds: {', '.join(folders)} is a folder, not a dataset.")
    return [found[pk] for pk in wanted]


# A recalled chunk's columns, read by position into a Row (`row_reader`): the chunk `d` joined
# with its collection `c`. PostgreSQL's vector recall reads them in its own statement
# (datasets/search/vector/pgvector.py).
ROW_COLUMNS = (
    "d.id, d.q, d.a, d.chunk_index, d.dataset_id, d.collection_id, d.updated_at, "
    "c.name, c.external_file_id, c.raw_link"
)
DATA_AND_COLLECTION = (
    f"{Data._meta.db_table} d JOIN {Collection._meta.db_table} c ON c.id = d.collection_id"
)


def row_reader() -> Callable[..., Row]:
    """The function making a Row of ROW_COLUMNS' values (its time converter looked up once)."""
    time = value_converter(Data, "updated_at")

    def row(pk, q, a, chunk_index, dataset_id, collection_id, updated_at, name, external_id, link) -> Row:
        return Row(pk, q, a, chunk_index, dataset_id, collection_id, time(updated_at), name,
                   external_id or link or collection_id)

    return row


def recalled_rows(*, dataset_ids: list[str], data_ids: set[str]) -> dict[str, Row]:
    """The recalled chunks by id, of searchable collections only (a collection forbidden since
    the recall, or a chunk deleted meanwhile, simply drops out).

    By primary key only: with a dataset condition SQLite picks the dataset index and scans the
    whole dataset, so the dataset is checked here instead."""
    if not data_ids:
        return {}
    one_of, ids = _one_of("d.id", list(data_ids))
    sql = f"SELECT {ROW_COLUMNS} FROM {DATA_AND_COLLECTION} WHERE {one_of} AND c.forbid = %s"
    with connection.cursor() as cursor:
        cursor.execute(sql, [*ids, False])
        rows = cursor.fetchall()
    allowed = set(dataset_ids)
    row = row_reader()
    return {values[0]: row(*values) for values in rows if values[4] in allowed}
