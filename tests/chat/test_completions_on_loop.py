"""A turn served straight by the event loop, as under uvicorn (no sync caller): on PostgreSQL
its read and write run on psycopg's async pool (chat/completions/turn_store.py), on SQLite in
a thread hop. Committed data (transactional tests): the async pool has connections of its own.

The same guarantees as the sync path the rest of tests/chat drives through Django's client:
a chat's history and variables, a client's record ids (kept, or fresh ones when taken), usage
counted, a capped key's reservation, every error in the envelope."""

import asyncio
import json

import httpx
import pytest
from django.db import connection

import config.asgi
from chat.completions import services as chat_services
from chat.completions import turn_store, views
from chat.models import Chat, ChatItem
from keys import services
from keys.models import ApiKey
from tests.chat.completion_calls import ask, run_as_served

URL = "/api/v1/chat/completions"
pytestmark = pytest.mark.django_db(transaction=True)


def on_loop(key, *bodies, then=None) -> list[httpx.Response]:
    """POST each body in turn through the ASGI application, as uvicorn runs it (`run_as_served`).
    ``then``: a coroutine function run on that loop after the requests, while its pool is still
    open."""

    async def run():
        answers = []
        transport = httpx.ASGITransport(app=config.asgi.application, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for body in bodies:
                headers = {"Authorization": key.header, "Content-Type": "application/json"}
                answers.append(await client.post(URL, content=json.dumps(body), headers=headers))
        if then is not None:
            await then()
        return answers

    return run_as_served(run)


def test_the_loop_path_is_taken_on_postgresql_only(db):
    seen = []

    async def probe():
        seen.append(turn_store.on_loop())

    asyncio.run(probe())
    assert seen == [connection.vendor == "postgresql"]


def test_a_chat_keeps_its_history_variables_and_usage(provider_models, app_key):
    first, second = on_loop(
        app_key,
        ask("my name is Ada", chatId="c1", variables={"lang": "en", "tone": "dry"}, metadata={"a": 1}),
        ask("what is my name?", chatId="c1", variables={"tone": "warm"}, customUid="u1"),
    )
    assert first.status_code == second.status_code == 200, second.text
    chat = Chat.objects.get(chat_id="c1")
    assert chat.variables == {"lang": "en", "tone": "warm"}  # merged over what was stored
    assert chat.metadata["a"] == 1 and chat.custom_uid == "u1"
    items = list(ChatItem.objects.filter(chat=chat).order_by("id"))
    assert [i.obj for i in items] == ["Human", "AI", "Human", "AI"]
    assert items[3].data_id == second.json()["responseChatItemId"]
    # The second question was sent with the first round as history.
    sent = provider_models.requests[-1]["body"]["messages"]
    assert [m["role"] for m in sent][-3:] == ["user", "assistant", "user"]
    assert "Ada" in sent[-3]["content"]
    assert ApiKey.objects.get(pk=app_key.row.pk).usage_points > 0


def test_a_taken_record_id_is_stored_under_a_fresh_one(provider_models, app_key):
    first, again = on_loop(
        app_key,
        ask("one", chatId="c2", responseChatItemId="mine"),
        {"messages": [{"role": "user", "content": "two", "dataId": "mine"}], "chatId": "c2"},
    )
    assert first.status_code == again.status_code == 200, again.text
    ids = list(ChatItem.objects.filter(chat__chat_id="c2").values_list("data_id", flat=True))
    assert len(ids) == 4 and len(set(ids)) == 4 and ids.count("mine") == 1


def test_a_used_response_id_and_a_bad_body_are_400_and_an_unknown_key_401(provider_models, app_key):
    from tests.issued_keys import IssuedKey

    on_loop(app_key, ask("one", chatId="c3", responseChatItemId="r1"))
    used, bad = on_loop(app_key, ask("two", chatId="c3", responseChatItemId="r1"), {"messages": []})
    assert (used.status_code, bad.status_code) == (400, 400)
    assert "responseChatItemId" in used.json()["message"] and "messages" in bad.json()["message"]
    (unknown,) = on_loop(IssuedKey(None, "fastgpt-" + "z" * 48), ask("hi"))
    assert unknown.status_code == 401 and unknown.json()["statusText"] == "unAuthApiKey"


def test_a_capped_key_reserves_then_settles(provider_models, make_key, team, app):
    key = make_key(team, app, max_usage_points=10_000)
    (answer,) = on_loop(key, ask("hi"))
    assert answer.status_code == 200, answer.text
    assert ApiKey.objects.get(pk=key.row.pk).usage_points == answer.json()["usage"]["total_tokens"]


def prepared_after_turns(key, turns: int) -> list[str]:
    """The statements prepared on the pool's connection after `turns` turns."""
    prepared = []

    async def read_prepared():
        async with (await turn_store._pool()).connection() as conn:
            cursor = await conn.execute("SELECT statement FROM pg_prepared_statements")
            prepared.extend(row[0] for row in await cursor.fetchall())

    answers = on_loop(key, *[ask(f"question {n}") for n in range(turns)], then=read_prepared)
    assert {answer.status_code for answer in answers} == {200}
    return prepared


def test_the_turns_read_and_write_are_prepared_on_the_pools_connection(provider_models, app_key, one_pooled_connection):
    prepared = prepared_after_turns(app_key, 6)  # psycopg prepares a statement at its 5th use
    assert any("FROM keys_apikey k" in statement for statement in prepared)  # the read
    assert any("INSERT INTO chat_chat" in statement for statement in prepared)  # the write


def test_prepared_statements_can_be_turned_off(provider_models, app_key, one_pooled_connection, monkeypatch):
    monkeypatch.setitem(one_pooled_connection, "prepare_threshold", None)  # DB_PREPARED_STATEMENTS=false
    assert prepared_after_turns(app_key, 6) == []


def test_a_burst_of_one_keys_turns_claims_its_last_use_once(provider_models, app_key, monkeypatch, settings):
    """Ten turns at once, all reading the key's old `last_used_at`: one claims the write (on
    PostgreSQL the one thread hop), the others go on without it; the time is written."""
    settings.API_KEY_RATE = ""  # no counter in the test's cache (the database's): no hop for it
    claims, hops = [], []
    real_claim, real_hop = services.claim_last_used, views.finish_turn_and_release

    def recorded(*, key, now):
        claims.append((now, real_claim(key=key, now=now)))
        return claims[-1][1]

    def hop(*args):
        hops.append(args)
        return real_hop(*args)

    monkeypatch.setattr(services, "claim_last_used", recorded)
    monkeypatch.setattr(chat_services, "claim_last_used", recorded)
    monkeypatch.setattr(views, "finish_turn_and_release", hop)

    async def burst():
        transport = httpx.ASGITransport(app=config.asgi.application, client=("127.0.0.1", 40000))
        headers = {"Authorization": app_key.header, "Content-Type": "application/json"}
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return await asyncio.gather(*[client.post(URL, content=json.dumps(ask(f"q{n}")), headers=headers)
                                          for n in range(10)])

    answers = run_as_served(burst)
    assert {answer.status_code for answer in answers} == {200}
    assert len({now for now, won in claims if won}) == 1  # one moment (a turn judged twice: hop, then write)
    if connection.vendor == "postgresql":  # served on the loop: the others took no thread hop
        assert len(hops) == 1
    assert ApiKey.objects.get(pk=app_key.row.pk).last_used_at is not None
