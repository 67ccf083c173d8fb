"""A chat turn's two database round trips: one read before the model call, one write after.

Why raw SQL here, and only here: this is the hot path (every chat turn, every stream), and
through the ORM a turn cost 7 statements (11 with a `chatId`) and 4.2–4.5 ms of CPU building,
compiling and loading them — more than everything else the server does for a turn
(docs/benchmarks.md, "Where a non-stream turn's CPU goes today"). The same reads and writes
as two statements cost a fraction of that. Everything else stays on the ORM.

- `read_turn`: the key (by hash) with its app (the key's own, or the one the request names,
  of the key's team), whether that app has datasets to search, and, when a `chatId` is given,
  the stored chat's variables, whether the answer's record id is taken, and its recent
  records — one SELECT on both databases.
- `write_turn`: the chat created or updated (variables and metadata merged over what is
  stored *at write time*), the question and answer records, the key's usage points. On
  PostgreSQL one statement (data-modifying CTEs; atomic on its own, and concurrent first turns
  of one chat meet in `ON CONFLICT`); on SQLite, which has no network round trip to save and
  one writer at a time, a few statements in one transaction.

Rows become model instances through the same field converters the ORM uses, so an `ApiKey`
or `App` read here is the object the rest of the code expects.
"""

import asyncio
import json
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime

import psycopg
from asgiref.sync import AsyncToSync
from django.db import DatabaseError, IntegrityError, OperationalError, connection, transaction
from psycopg_pool import AsyncConnectionPool

from chat.models import App, ChatItem, ChatRole
from config.postgres.liveness import known_alive, mark_returned
from config.postgres.pools import AsyncLastReturnedFirstPool
from config.raw_rows import columns, default_vendor, model_instance
from keys.models import ApiKey

KEY_FIELDS = ApiKey._meta.concrete_fields
APP_FIELDS = App._meta.concrete_fields


@dataclass(frozen=True)
class StoredRecord:
    """A record of the chat's history, as the prompt needs it (chat/completions/prompting.py)."""

    obj: str
    value: list


@dataclass
class TurnRead:
    """What `read_turn` found. `key` None: no key has this hash; `app` None: no app of the
    key's team by that id (or none named)."""

    key: ApiKey | None
    app: App | None = None
    has_datasets: bool = False
    chat_found: bool = False
    chat_variables: dict | None = None
    response_id_taken: bool = False
    recent: list[StoredRecord] | None = None


# The records aggregate is the one part that differs: each database's JSON functions.
_RECENT_JSON = {
    "postgresql": "(SELECT json_agg(json_build_array(id, obj, value))::text FROM recent)",
    "sqlite": "(SELECT json_group_array(json_array(id, obj, json(value))) FROM recent)",
}

_READ = """
WITH turn AS (
    SELECT {key_columns}, {app_columns},
        EXISTS (
            SELECT 1 FROM chat_appdataset l JOIN datasets_dataset d ON d.id = l.dataset_id
            WHERE l.app_id = a.id AND d.team_id = a.team_id AND d.type = 'dataset'
        ) AS has_datasets,
        c.id AS chat_pk, CAST(c.variables AS text) AS chat_variables,
        EXISTS (
            SELECT 1 FROM chat_chatitem i WHERE i.chat_id = c.id AND i.data_id = %(response_id)s
        ) AS response_id_taken
    FROM keys_apikey k
    LEFT JOIN chat_app a ON a.id = COALESCE(k.app_id, %(app_id)s) AND a.team_id = k.team_id
    LEFT JOIN chat_chat c ON c.app_id = a.id AND c.chat_id = %(chat_id)s
    WHERE k.key_hash = %(key_hash)s
),
recent AS (
    SELECT i.id, i.obj, i.value FROM chat_chatitem i
    WHERE i.chat_id = (SELECT chat_pk FROM turn)
    ORDER BY i.id DESC
    LIMIT (SELECT COALESCE(history_turns, 0) * 2 FROM turn)
)
SELECT turn.*, {recent_json} FROM turn
"""


def _read_sql(vendor: str) -> str:
    # Columns are unaliased in `turn`: key and app columns are read back by position.
    return _READ.format(
        key_columns=columns("k", KEY_FIELDS),
        app_columns=columns("a", APP_FIELDS),
        recent_json=_RECENT_JSON[vendor],
    )


_READ_SQL = {vendor: _read_sql(vendor) for vendor in _RECENT_JSON}


def read_turn(*, key_hash: str, app_id: str | None, chat_id: str | None, response_id: str | None) -> TurnRead:
    """One SELECT: the key, its app, the app's dataset flag and, with ``chat_id``, the chat.

    ``app_id``: the app the request names, used only for a global key (an app key's own app
    always wins). ``response_id``: a record id the client chose for the answer, checked
    against the stored chat.
    """
    params = _read_params(key_hash, app_id, chat_id, response_id)
    with connection.cursor() as cursor:
        cursor.execute(_READ_SQL[connection.vendor], params)
        return _turn_read(cursor.fetchone())


async def read_turn_async(
    *, key_hash: str, app_id: str | None, chat_id: str | None, response_id: str | None
) -> TurnRead:
    """`read_turn` on the event loop, through psycopg's async pool (PostgreSQL; `on_loop()`).

    Requests asking the same read share it until it is sent (`_shared_row`); each makes its
    own objects of the row."""
    params = _read_params(key_hash, app_id, chat_id, response_id)
    return _turn_read(await _shared_row(params))


# By loop and parameters (`_shared_row`): the read that new requests join (not sent yet), and
# the one sent.
_waiting_reads: dict[tuple, asyncio.Task] = {}
_sent_reads: dict[tuple, asyncio.Task] = {}


async def _shared_row(params: dict) -> tuple | None:
    """The read's row, shared by the requests that ask the same read before it is sent.

    When many turns of one key start at once (a client's burst: a thousand streams opened in
    the same instant), each used to run the same statement: PostgreSQL's work and the
    driver's, a thousand times over. Now one read of given parameters is sent at a time; the
    requests that arrive while it runs join the next one, sent when it is done (and a request
    finding no read of its parameters under way sends its own at once, as before).
    Joining ends when the statement is sent, so every request that shares a row arrived before
    it was read: the row is as fresh as one the request would have read itself (a key revoked
    before a request arrived is seen revoked). The row holds only immutable values (the
    chat's variables come as text), so sharing it shares no object."""
    key = (asyncio.get_running_loop(), *params.values())
    read = _waiting_reads.get(key)
    if read is None:
        read = _waiting_reads[key] = asyncio.ensure_future(_read_row(key, params, after=_sent_reads.get(key)))
    # Shielded: a request that goes away does not cancel the read the others wait for.
    return await asyncio.shield(read)


async def _read_row(key: tuple, params: dict, *, after: asyncio.Task | None) -> tuple | None:
    this = asyncio.current_task()
    try:
        if after is not None:
            await asyncio.wait([after])  # its outcome is its own requests'
        async with _async_connection() as conn:
            del _waiting_reads[key]  # sent now: a request arriving from here on joins the next read
            _sent_reads[key] = this
            cursor = await conn.execute(_READ_SQL["postgresql"], params)
            return await cursor.fetchone()
    finally:
        for reads in (_waiting_reads, _sent_reads):
            if reads.get(key) is this:
                del reads[key]


def _read_params(key_hash, app_id, chat_id, response_id) -> dict:
    return {"key_hash": key_hash, "app_id": app_id, "chat_id": chat_id or None, "response_id": response_id}


def _turn_read(row) -> TurnRead:
    if row is None:
        return TurnRead(key=None)
    nkey, napp = len(KEY_FIELDS), len(APP_FIELDS)
    key = model_instance(ApiKey, KEY_FIELDS, row[:nkey])
    app_values = row[nkey : nkey + napp]
    has_datasets, chat_pk, chat_variables, taken, recent = row[nkey + napp :]
    read = TurnRead(key=key)
    if app_values[0] is None:
        return read
    read.app = model_instance(App, APP_FIELDS, app_values)
    read.has_datasets = bool(has_datasets)
    if chat_pk is not None:
        read.chat_found = True
        read.chat_variables = _json(chat_variables) or {}
        read.response_id_taken = bool(taken)
        records = sorted(_json(recent) or [], key=lambda record: record[0])  # oldest first
        read.recent = [StoredRecord(obj=obj, value=value) for _id, obj, value in records]
    return read


def _json(value):
    return json.loads(value) if isinstance(value, str) else value


# --- the write ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TurnWrite:
    """Everything the write stores. ``variables``/``metadata``: a new chat's; an existing
    chat gets ``request_variables`` and ``metadata`` merged over what it holds."""

    team_id: str
    app_id: str
    chat_id: str
    title: str
    source: str
    source_name: str
    api_key_id: int
    custom_uid: str
    variables: dict
    request_variables: dict
    metadata: dict
    now: datetime
    human_data_id: str
    question: list
    asked_at: datetime
    ai_data_id: str
    answer: list
    response_data: list
    error: str
    interrupted: bool
    duration: float
    usage_account_id: int
    usage_delta: int


_WRITE_POSTGRESQL = """
WITH chat AS (
    INSERT INTO chat_chat (team_id, app_id, chat_id, title, custom_title, top, source, source_name,
        api_key_id, custom_uid, variables, metadata, created_at, updated_at)
    VALUES (%(team_id)s, %(app_id)s, %(chat_id)s, %(title)s, '', false, %(source)s, %(source_name)s,
        %(api_key_id)s, %(custom_uid)s, %(variables)s::jsonb, %(metadata)s::jsonb, %(now)s, %(now)s)
    ON CONFLICT (app_id, chat_id) DO UPDATE SET
        variables = chat_chat.variables || %(request_variables)s::jsonb,
        metadata = chat_chat.metadata || EXCLUDED.metadata,
        custom_uid = CASE WHEN EXCLUDED.custom_uid <> '' THEN EXCLUDED.custom_uid ELSE chat_chat.custom_uid END,
        updated_at = EXCLUDED.updated_at
    RETURNING id
),
usage AS (
    UPDATE keys_apikey SET usage_points = usage_points + %(usage_delta)s
    WHERE id = %(usage_account_id)s AND %(usage_delta)s <> 0
)
INSERT INTO chat_chatitem (chat_id, data_id, obj, value, response_data, error_msg, interrupted,
    duration_seconds, time)
SELECT chat.id, r.data_id, r.obj, r.value::jsonb, r.response_data::jsonb, r.error_msg, r.interrupted,
    r.duration_seconds, r.time
FROM chat, (VALUES
    (1, %(human_data_id)s, %(human)s, %(question)s, '[]', '', false, NULL::double precision, %(asked_at)s::timestamptz),
    (2, %(ai_data_id)s, %(ai)s, %(answer)s, %(response_data)s, %(error)s, %(interrupted)s, %(duration)s, %(now)s)
) AS r(n, data_id, obj, value, response_data, error_msg, interrupted, duration_seconds, time)
ORDER BY r.n
"""

_SQLITE_CHAT = """
INSERT INTO chat_chat (team_id, app_id, chat_id, title, custom_title, top, source, source_name,
    api_key_id, custom_uid, variables, metadata, created_at, updated_at)
VALUES (%(team_id)s, %(app_id)s, %(chat_id)s, %(title)s, '', 0, %(source)s, %(source_name)s,
    %(api_key_id)s, %(custom_uid)s, %(variables)s, %(metadata)s, %(now)s, %(now)s)
ON CONFLICT (app_id, chat_id) DO UPDATE SET updated_at = excluded.updated_at
RETURNING id, variables, metadata, custom_uid
"""
_SQLITE_CHAT_MERGE = "UPDATE chat_chat SET variables = %s, metadata = %s, custom_uid = %s WHERE id = %s"
_SQLITE_ITEMS = """
INSERT INTO chat_chatitem (chat_id, data_id, obj, value, response_data, error_msg, interrupted,
    duration_seconds, time)
VALUES (%(chat_pk)s, %(human_data_id)s, %(human)s, %(question)s, '[]', '', 0, NULL, %(asked_at)s),
    (%(chat_pk)s, %(ai_data_id)s, %(ai)s, %(answer)s, %(response_data)s, %(error)s, %(interrupted)s,
     %(duration)s, %(now)s)
"""
_SQLITE_USAGE = "UPDATE keys_apikey SET usage_points = usage_points + %s WHERE id = %s"


def write_turn(turn: TurnWrite, *, atomic: bool) -> None:
    """Store the turn. Raises IntegrityError when a record id is already used in the chat
    (nothing is then written). ``atomic``: run in a transaction (a savepoint inside one), as
    a caller that retries after IntegrityError needs on PostgreSQL; one statement is atomic
    on its own."""
    params = _params(turn)
    if connection.vendor == "postgresql":
        if atomic:
            with transaction.atomic():
                _execute(_WRITE_POSTGRESQL, params)
        else:
            _execute(_WRITE_POSTGRESQL, params)
        return
    with transaction.atomic():
        _write_sqlite(turn, params)


async def write_turn_async(turn: TurnWrite) -> None:
    """`write_turn` on the event loop, through psycopg's async pool (PostgreSQL; `on_loop()`):
    one statement in autocommit, atomic on its own. Raises django.db.IntegrityError as
    `write_turn` does."""
    params = _params(turn)
    async with _async_connection() as conn:
        await conn.execute(_WRITE_POSTGRESQL, params)


def _write_sqlite(turn: TurnWrite, params: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(_SQLITE_CHAT, params)
        chat_pk, variables, metadata, custom_uid = cursor.fetchone()
        # Merged over what is stored now (the write lock is held from here to the commit).
        stored_variables, stored_metadata = json.loads(variables), json.loads(metadata)
        merged = (
            {**stored_variables, **turn.request_variables},
            {**stored_metadata, **turn.metadata},
            turn.custom_uid or custom_uid,
        )
        if merged != (stored_variables, stored_metadata, custom_uid):  # a new chat already has them
            cursor.execute(
                _SQLITE_CHAT_MERGE, [json.dumps(merged[0]), json.dumps(merged[1]), merged[2], chat_pk]
            )
        cursor.execute(_SQLITE_ITEMS, {**params, "chat_pk": chat_pk})
        if turn.usage_delta:
            cursor.execute(_SQLITE_USAGE, [turn.usage_delta, turn.usage_account_id])


def _execute(sql: str, params: dict) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def _params(turn: TurnWrite) -> dict:
    ops = connection.ops
    return {
        "team_id": turn.team_id, "app_id": turn.app_id, "chat_id": turn.chat_id, "title": turn.title,
        "source": turn.source, "source_name": turn.source_name, "api_key_id": turn.api_key_id,
        "custom_uid": turn.custom_uid, "variables": json.dumps(turn.variables),
        "request_variables": json.dumps(turn.request_variables), "metadata": json.dumps(turn.metadata),
        "now": ops.adapt_datetimefield_value(turn.now),
        "asked_at": ops.adapt_datetimefield_value(turn.asked_at),
        "human": ChatRole.HUMAN.value, "ai": ChatRole.AI.value,
        "human_data_id": turn.human_data_id, "question": json.dumps(turn.question),
        "ai_data_id": turn.ai_data_id, "answer": json.dumps(turn.answer),
        "response_data": json.dumps(turn.response_data), "error": turn.error,
        "interrupted": turn.interrupted, "duration": turn.duration,
        "usage_account_id": turn.usage_account_id, "usage_delta": turn.usage_delta,
    }


def taken_record_ids(*, app_id: str, chat_id: str, data_ids: list[str]) -> set[str]:
    """Which of ``data_ids`` the chat already has (after `write_turn` met a clash)."""
    return set(
        ChatItem.objects.filter(chat__app_id=app_id, chat__chat_id=chat_id, data_id__in=data_ids)
        .values_list("data_id", flat=True)
    )


_TAKEN_SQL = """
SELECT i.data_id FROM chat_chatitem i JOIN chat_chat c ON c.id = i.chat_id
WHERE c.app_id = %(app_id)s AND c.chat_id = %(chat_id)s AND i.data_id = ANY(%(data_ids)s)
"""


async def taken_record_ids_async(*, app_id: str, chat_id: str, data_ids: list[str]) -> set[str]:
    async with _async_connection() as conn:
        cursor = await conn.execute(_TAKEN_SQL, {"app_id": app_id, "chat_id": chat_id, "data_ids": data_ids})
        return {row[0] for row in await cursor.fetchall()}


# --- psycopg's async pool -------------------------------------------------------------------
#
# Measured (bench/async_pool.py): the turn's read through Django's connection in a thread hop
# costs ~1.2 ms of CPU at c=1, the same statement on psycopg's async pool ~0.3 ms — the hop,
# Django's cursor wrapper and the pool checkout's thread work are most of a read. So on
# PostgreSQL, when the turn is served by the server's event loop, its two statements run here.
# A caller that is itself sync and awaits the view through async_to_sync (Django's test client,
# a management command) keeps Django's connection — and with it its transaction.
#
# Its cursors bind parameters on the server (psycopg's default; Django's connections bind on
# the client), so psycopg prepares the read and the write on each connection after a few uses
# (psycopg's `prepare_threshold`, 5) and PostgreSQL stops parsing and planning them on every turn:
# −0.8 ms of PostgreSQL CPU and −1 ms of added latency per turn at c=1 (docs/benchmarks.md,
# "Prepared statements and fewer liveness checks"). Behind PgBouncer in transaction mode this
# needs PgBouncer ≥ 1.21 with `max_prepared_statements` set, or DB_PREPARED_STATEMENTS=false
# (docs/production.md).

_async_pools: dict = {}


def on_loop() -> bool:
    """Whether this turn's statements run on psycopg's async pool (see above)."""
    return default_vendor() == "postgresql" and getattr(AsyncToSync.executors, "current", None) is None


@asynccontextmanager
async def _async_connection():
    """A connection of this event loop's pool; psycopg's errors raised as Django's (so a
    database outage is the same 503, a clash the same IntegrityError)."""
    try:
        pool = await _pool()
        async with pool.connection() as conn:
            yield conn
    except psycopg.IntegrityError as exc:
        raise IntegrityError(*exc.args) from exc
    except psycopg.OperationalError as exc:  # PoolTimeout included
        raise OperationalError(*exc.args) from exc
    except psycopg.DatabaseError as exc:
        raise DatabaseError(*exc.args) from exc


async def _pool() -> AsyncConnectionPool:
    """This event loop's pool, sized as Django's (DB_POOL_MIN_SIZE, DB_POOL_MAX_SIZE,
    DB_POOL_TIMEOUT), opened on first use."""
    loop = asyncio.get_running_loop()
    if loop not in _async_pools:
        options = connection.settings_dict["OPTIONS"].get("pool") or {}
        params = connection.get_connection_params()
        params.pop("context", None)  # Django's adapters; this pool's rows are read raw
        params.pop("cursor_factory", None)  # Django's client-side binding (see above)
        # Django turns psycopg's prepared statements off unless OPTIONS name a threshold.
        params["prepare_threshold"] = connection.settings_dict["OPTIONS"].get("prepare_threshold", 5)
        params.pop("server_side_binding", None)
        pool = AsyncLastReturnedFirstPool(
            kwargs={**params, "autocommit": True},
            min_size=options.get("min_size", 2), max_size=options.get("max_size", 20),
            timeout=options.get("timeout", 10), check=_check_connection, reset=_returned, open=False,
        )
        _async_pools[loop] = (pool, asyncio.ensure_future(pool.open(wait=False)))
    pool, opening = _async_pools[loop]
    if not opening.done():
        await asyncio.shield(opening)
    return pool


async def close_async_pool() -> None:
    """Close this event loop's pool, if it has one (a loop that ends before the process: tests,
    benchmarks)."""
    entry = _async_pools.pop(asyncio.get_running_loop(), None)
    if entry is not None:
        await entry[1]
        await entry[0].close()


async def _check_connection(conn) -> None:
    """As config/postgres's check: a connection back a moment ago is not tested again
    (config/postgres/liveness.py); a dead connection means the server went away, so every idle
    connection is tested and replaced at once rather than met one by one."""
    if known_alive(conn):
        return
    try:
        await AsyncConnectionPool.check_connection(conn)
    except Exception:
        pool = getattr(conn, "_pool", None)
        if pool is not None:
            await pool.check()
        raise


async def _returned(conn) -> None:
    mark_returned(conn)
