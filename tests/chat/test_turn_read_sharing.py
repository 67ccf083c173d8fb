"""Turns that ask the same read share it until it is sent (chat/completions/turn_store.py
`_shared_row`), on PostgreSQL's async pool: one read of given parameters at a time, those
arriving meanwhile sharing the next — a few statements for a burst of one key, and never a row
older than the request."""

import asyncio

import psycopg
import pytest
from django.db import OperationalError, connection
from django.utils import timezone

from chat.completions import turn_store
from chat.models import Chat
from keys.hashing import hash_key
from tests.chat.completion_calls import run_as_served
from tests.config.postgres.helpers import plain_connection_params

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="PostgreSQL only: psycopg's async pool"),
]


@pytest.fixture
def counted_reads(monkeypatch, db):
    """The reads made (each one statement), by their parameters."""
    calls = []
    real = turn_store._read_row

    async def counting(key, params, **kwargs):
        calls.append(params)
        return await real(key, params, **kwargs)

    monkeypatch.setattr(turn_store, "_read_row", counting)
    return calls


def read_args(key, **fields) -> dict:
    return {"key_hash": hash_key(key.plaintext), "app_id": None, "chat_id": None, "response_id": None, **fields}


async def settle(condition, timeout: float = 10.0) -> None:
    """Let the loop run until ``condition()`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.005)


def test_turns_of_one_key_waiting_for_a_connection_share_one_read(app_key, counted_reads, one_pooled_connection):
    async def burst():
        pool = await turn_store._pool()
        held = await pool.getconn()  # the pool's only connection: every read must wait
        reads = [asyncio.ensure_future(turn_store.read_turn_async(**read_args(app_key))) for _ in range(30)]
        await settle(lambda: len(counted_reads) == 1)
        await asyncio.sleep(0.05)
        assert not any(read.done() for read in reads)
        await pool.putconn(held)
        return await asyncio.gather(*reads)

    results = run_as_served(burst)
    assert len(counted_reads) == 1
    assert {read.key.pk for read in results} == {app_key.row.pk}
    assert {read.app.pk for read in results} == {app_key.row.app_id}
    # Each turn has objects of its own, made from the shared row.
    assert len({id(read.key) for read in results}) == len({id(read.app) for read in results}) == 30


def test_other_parameters_read_on_their_own(app_key, make_key, team, app, counted_reads, one_pooled_connection):
    other = make_key(team, app, name="other")

    async def both():
        pool = await turn_store._pool()
        held = await pool.getconn()
        reads = [asyncio.ensure_future(turn_store.read_turn_async(**args))
                 for args in (read_args(app_key), read_args(other), read_args(app_key, chat_id="c1"))]
        await settle(lambda: len(counted_reads) == 3)
        await pool.putconn(held)
        return await asyncio.gather(*reads)

    first, second, third = run_as_served(both)
    assert (first.key.pk, second.key.pk, third.key.pk) == (app_key.row.pk, other.row.pk, app_key.row.pk)


def test_turns_arriving_once_the_read_is_sent_share_the_next_and_see_a_revocation(app_key, counted_reads):
    """The first read is sent and held up inside PostgreSQL (a lock on a table it reads); the
    key is then revoked, and two more turns of the key arrive: they must not take the first
    read's row, and share the one read sent after it, though the pool has connections free."""
    locker = psycopg.connect(**{**plain_connection_params(), "autocommit": False})
    locker.execute("LOCK TABLE chat_appdataset IN ACCESS EXCLUSIVE MODE")  # in a transaction: held

    async def revoked_meanwhile():
        first = asyncio.ensure_future(turn_store.read_turn_async(**read_args(app_key)))
        await settle(lambda: len(counted_reads) == 1 and not turn_store._waiting_reads)  # sent
        await asyncio.to_thread(revoke, app_key.row.pk)
        later = [asyncio.ensure_future(turn_store.read_turn_async(**read_args(app_key)))]
        await settle(lambda: len(counted_reads) == 2)
        await asyncio.sleep(0.05)  # time enough to take one of the free connections, were it allowed
        later.append(asyncio.ensure_future(turn_store.read_turn_async(**read_args(app_key))))
        await asyncio.sleep(0.05)
        assert not first.done() and len(turn_store._sent_reads) == 1  # one read of a key at a time
        await asyncio.to_thread(locker.rollback)
        return await asyncio.gather(first, *later)

    try:
        first, second, third = run_as_served(revoked_meanwhile)
    finally:
        locker.close()
    assert len(counted_reads) == 2
    assert first.key.pk == app_key.row.pk  # (its snapshot is PostgreSQL's business: taken once the lock is granted)
    assert second.key.revoked_at is not None and third.key.revoked_at is not None


def revoke(pk) -> None:
    with psycopg.connect(**plain_connection_params()) as conn:
        conn.execute("UPDATE keys_apikey SET revoked_at = %s WHERE id = %s", [timezone.now(), pk])


def test_a_failed_read_fails_every_turn_sharing_it_and_the_next_one_reads_again(app_key, counted_reads, one_pooled_connection, monkeypatch):
    async def failing():
        pool = await turn_store._pool()
        held = await pool.getconn()
        monkeypatch.setattr(pool, "timeout", 0.2)  # no connection comes back in time
        reads = [asyncio.ensure_future(turn_store.read_turn_async(**read_args(app_key))) for _ in range(5)]
        outcomes = await asyncio.gather(*reads, return_exceptions=True)
        await pool.putconn(held)
        after = await turn_store.read_turn_async(**read_args(app_key))
        return outcomes, after

    outcomes, after = run_as_served(failing)
    assert all(isinstance(outcome, OperationalError) for outcome in outcomes)
    assert not turn_store._waiting_reads
    assert len(counted_reads) == 2 and after.key.pk == app_key.row.pk


def test_a_turn_that_goes_away_does_not_cancel_the_read_others_wait_for(app_key, counted_reads, one_pooled_connection):
    async def one_leaves():
        pool = await turn_store._pool()
        held = await pool.getconn()
        leaving = asyncio.ensure_future(turn_store.read_turn_async(**read_args(app_key)))
        staying = asyncio.ensure_future(turn_store.read_turn_async(**read_args(app_key)))
        await settle(lambda: len(counted_reads) == 1)
        leaving.cancel()
        await pool.putconn(held)
        return await staying

    read = run_as_served(one_leaves)
    assert read.key.pk == app_key.row.pk and len(counted_reads) == 1


def test_a_chats_variables_come_as_their_own_objects(app_key, counted_reads, one_pooled_connection):
    Chat.objects.create(team_id=app_key.row.team_id, app_id=app_key.row.app_id, chat_id="c9",
                        variables={"nested": {"lang": "en"}})

    async def two():
        pool = await turn_store._pool()
        held = await pool.getconn()
        reads = [asyncio.ensure_future(turn_store.read_turn_async(**read_args(app_key, chat_id="c9")))
                 for _ in range(2)]
        await settle(lambda: len(counted_reads) == 1)
        await pool.putconn(held)
        return await asyncio.gather(*reads)

    first, second = run_as_served(two)
    assert first.chat_variables == second.chat_variables == {"nested": {"lang": "en"}}
    assert first.chat_variables["nested"] is not second.chat_variables["nested"]
