"""Factories for conversations, shaped the way chat completions store them.

A turn is a Human record then an AI record; `value` holds FastGPT's typed parts and the AI
record's `response_data` the run's node records (a dataset search with its quotes, then the
chat node with model and tokens).
"""

from datetime import timedelta
from itertools import count

import pytest
from django.db import connection
from django.utils import timezone

from chat.models import App, Chat, ChatItem, ChatRole

_ids = count(1)


def text_value(text: str) -> list[dict]:
    return [{"type": "text", "text": {"content": text}}]


def image_part(url: str) -> dict:
    return {"type": "file", "file": {"type": "image", "name": "", "url": url}}


def quote(n: int, *, text: str = "", source: str = "manual.pdf") -> dict:
    return {
        "id": f"q{n}", "q": text or f"quoted question {n}", "a": f"quoted answer {n}",
        "datasetId": "ds1", "collectionId": "col1", "sourceName": source, "sourceId": "src1",
        "score": 0.8,
    }


def run_data(*, question: str, quotes: list[dict] | None = None, model: str = "gpt-test") -> list[dict]:
    """The node records of one run: a dataset search (when it quoted anything), the chat node."""
    nodes = []
    if quotes:
        nodes.append(
            {
                "id": "n1", "nodeId": "datasetSearch", "moduleType": "datasetSearchNode",
                "moduleName": "Dataset search", "runningTime": 0.01, "quoteList": quotes,
            }
        )
    nodes.append(
        {
            "id": "n2", "nodeId": "chatNode", "moduleType": "chatNode", "moduleName": "AI Chat",
            "runningTime": 1.2, "model": model, "tokens": 120, "inputTokens": 100,
            "outputTokens": 20, "query": question,
            "historyPreview": [{"obj": "Human", "value": question}],
        }
    )
    return nodes


@pytest.fixture
def make_chat(db):
    """make_chat(app, chat_id=…, custom_uid=…, source=…, updated_at=…, …) -> Chat"""

    def make(app: App, **fields) -> Chat:
        n = next(_ids)
        fields.setdefault("chat_id", f"chat-{n}")
        fields.setdefault("title", f"Question {n}")
        fields.setdefault("source_name", "app")
        fields.setdefault("updated_at", timezone.now() - timedelta(minutes=n))
        return Chat.objects.create(team_id=app.team_id, app=app, **fields)

    return make


@pytest.fixture
def add_turn(db):
    """add_turn(chat, question, answer, quotes=…, error=…, …) -> (human, ai)"""

    def add(
        chat: Chat,
        question: str = "hi",
        answer: str = "answer",
        *,
        quotes: list[dict] | None = None,
        error: str = "",
        interrupted: bool = False,
        images: list[str] = (),
        good: str | None = None,
        bad: str | None = None,
    ) -> tuple[ChatItem, ChatItem]:
        n = next(_ids)
        human = ChatItem.objects.create(
            chat=chat, data_id=f"h{n}", obj=ChatRole.HUMAN,
            value=text_value(question) + [image_part(url) for url in images],
        )
        ai = ChatItem.objects.create(
            chat=chat, data_id=f"a{n}", obj=ChatRole.AI,
            value=text_value(answer) if answer else [],
            response_data=run_data(question=question, quotes=quotes),
            error_msg=error, interrupted=interrupted, duration_seconds=1.25,
            user_good_feedback=good, user_bad_feedback=bad,
        )
        return human, ai

    return add


@pytest.fixture
def chat(make_chat, add_turn, app) -> Chat:
    """A conversation of the team's app with two turns, the first quoting the knowledge base."""
    conversation = make_chat(app, chat_id="c1", custom_uid="user-1", variables={"name": "Ann"})
    add_turn(conversation, "What is X?", "X is a thing.", quotes=[quote(1), quote(2)])
    add_turn(conversation, "And Y?", "Y too.")
    return conversation


@pytest.fixture
def second_app(team) -> App:
    """Another app of the same team."""
    return App.objects.create(team=team, name="Sales bot")


@pytest.fixture
def one_pooled_connection(monkeypatch):
    """The async pool holds one connection, so every turn's statements run on it."""
    if connection.vendor != "postgresql":
        pytest.skip("PostgreSQL only: the async pool and its prepared statements")
    monkeypatch.setitem(connection.settings_dict["OPTIONS"], "pool", {"min_size": 1, "max_size": 1, "timeout": 10})
    return connection.settings_dict["OPTIONS"]
