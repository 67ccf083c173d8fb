"""A turn served straight by the event loop, as under uvicorn (no sync caller): on PostgreSQL
its read and write run on psycopg's async pool (chat/completions/turn_store.py), on SQLite in
a thread hop. Committed data (transactional tests): the async pool has connections of its own.

The same guarantees as the sync path the rest of tests/chat drives through Django's client:
a chat's history and variables, a client's record ids (kept, or fresh ones when taken), usage
counted, a capped key's reservation, every error in the envelope."""

import asyncio
import json
import threading

import httpx
import pytest

import config.asgi
from chat.completions import turn_store
from chat.models import Chat, ChatItem
from keys.models import ApiKey
from tests.chat.completion_calls import ask

URL = "/api/v1/chat/completions"
pytestmark = pytest.mark.django_db(transaction=True)


def on_loop(key, *bodies, then=None) -> list[httpx.Response]:
    """POST each body in turn through the ASGI application, on an event loop of a thread of
    its own (as uvicorn runs it: no async_to_sync caller). ``then``: a coroutine function run
    on that loop after the requests, while its pool is still open."""
    answers, errors = [], []

    async def run():
        transport = httpx.ASGITransport(app=config.asgi.application, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            for body in bodies:
                headers = {"Authorization": key.header, "Content-Type": "application/json"}
                answers.append(await client.post(URL, content=json.dumps(body), headers=headers))
        if then is not None:
            await then()
        await turn_store.close_async_pool()  # this loop ends here; uvicorn's lives as long as the server

    def thread():
        try:
            asyncio.run(run())
        except BaseException as exc:  # re-raised in the test
            errors.append(exc)

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join()
    if errors:
        raise errors[0]
    return answers


def test_the_loop_path_is_taken_on_postgresql_only(db):
    from django.db import connection

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


@pytest.fixture
def one_pooled_connection(monkeypatch):
    """The async pool holds one connection, so every turn's statements run on it."""
    from django.db import connection

    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: the async pool and its prepared statements")
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "pool", {"min_size": 1, "max_size": 1, "timeout": 10})
    return connection.settings_dict["OPTIONS"]


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
