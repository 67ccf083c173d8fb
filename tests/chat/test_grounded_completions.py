"""Chat completions of an app that answers from its datasets: the search runs first, its quotes
reach the prompt (fake provider) or the answer itself (offline responder), and the run's
dataset-search node is returned with `detail`, streamed, stored and billed."""

import json

import pytest

from chat.completions.quote_prompt import DEFAULT_QUOTE_PROMPT
from chat.models import ChatItem
from keys.models import ApiKey
from providers.offline_responder import NO_MODEL_ANSWER, NOTHING_FOUND_ANSWER, QUOTING_INTRO
from providers.token_count import estimate_text
from tests.chat.completion_calls import ask, post
from tests.chat.grounding_helpers import (
    CHUNKS, REFUND_QUESTION, UNRELATED_QUESTION, knowledge_base, link, search_node,
)

QUOTE_KEYS = {"id", "q", "a", "chunkIndex", "datasetId", "collectionId", "sourceName", "sourceId", "updateTime", "score"}


@pytest.fixture
def kb(team):
    return knowledge_base(team)


@pytest.fixture
def grounded_app(app, kb):
    link(app, kb.dataset)
    return app


def answer_text(response) -> str:
    assert response.status_code == 200, response.text
    return response.json()["choices"][0]["message"]["content"]


def stream_text(response) -> str:
    """The answer of an SSE response (OpenAI chunks, or FastGPT `answer` events)."""
    assert response.status_code == 200, response.text
    text = ""
    for name, data in response.events():
        if name in (None, "answer") and data != "[DONE]":
            for choice in json.loads(data).get("choices", []):
                text += choice["delta"].get("content") or ""
    return text


# --- the offline responder answers from the knowledge base ----------------------------------


def test_offline_answer_quotes_the_best_passage_and_says_it_is_quoting(grounded_app, app_key, kb):
    text = answer_text(post(ask(REFUND_QUESTION), key=app_key))
    assert text.startswith(QUOTING_INTRO)
    assert "not a generated answer" in text
    assert f"[1] policies.md\n{CHUNKS['refund']}" in text  # the best quote first, under its source


def test_offline_answer_stream_and_plain_stream_carry_the_same_quotes(grounded_app, app_key):
    whole = answer_text(post(ask(REFUND_QUESTION), key=app_key))
    assert stream_text(post(ask(REFUND_QUESTION, stream=True), key=app_key)) == whole
    assert stream_text(post(ask(REFUND_QUESTION, stream=True, detail=True), key=app_key)) == whole


@pytest.mark.parametrize("mode", ["embedding", "fullTextRecall"])
def test_offline_answer_says_nothing_relevant_was_found(app, app_key, kb, mode):
    # Embedding mode by its similarity threshold (the lexical embedding's hashed words may
    # collide a little), full text by having no word in common.
    link(app, kb.dataset, search_mode=mode, similarity=0.4)
    response = post(ask(UNRELATED_QUESTION, detail=True), key=app_key)
    assert answer_text(response) == NOTHING_FOUND_ANSWER
    assert search_node(response.json())["quoteList"] == []


def test_offline_answer_is_trimmed_to_the_apps_answer_length(grounded_app, app_key):
    grounded_app.max_tokens = 70
    grounded_app.save()
    text = answer_text(post(ask(REFUND_QUESTION), key=app_key))
    assert text.startswith(QUOTING_INTRO) and text.endswith("…")
    assert estimate_text(text) <= 70
    assert "[1] policies.md" in text and "[3]" not in text


def test_an_app_without_datasets_keeps_the_no_model_answer(app, app_key, kb):
    response = post(ask(REFUND_QUESTION, detail=True), key=app_key)
    assert answer_text(response) == NO_MODEL_ANSWER
    assert [n["moduleType"] for n in response.json()["responseData"]] == ["chatNode"]


def test_another_teams_dataset_linked_around_the_admin_is_never_searched(app, app_key, other_team):
    theirs = knowledge_base(other_team, name="Their secrets")
    link(app, theirs.dataset)
    response = post(ask(REFUND_QUESTION, detail=True), key=app_key)
    assert answer_text(response) == NO_MODEL_ANSWER
    assert CHUNKS["refund"] not in response.text
    assert [n["moduleType"] for n in response.json()["responseData"]] == ["chatNode"]


# --- detail: the dataset-search node --------------------------------------------------------


def test_detail_puts_the_search_node_with_fastgpt_quotes_before_the_chat_node(grounded_app, app_key, kb):
    body = post(ask(REFUND_QUESTION, detail=True), key=app_key).json()
    assert [n["moduleType"] for n in body["responseData"]] == ["datasetSearchNode", "chatNode"]
    node = search_node(body)
    assert node["moduleName"] == "Dataset search"
    assert node["query"] == REFUND_QUESTION
    assert (node["searchMode"], node["limit"], node["searchUsingReRank"]) == ("mixedRecall", 3000, False)
    assert node["similarity"] == 0.4
    assert node["runningTime"] >= 0 and node["embeddingTokens"] > 0 and node["tokens"] >= node["embeddingTokens"]
    first = node["quoteList"][0]
    refund = kb.chunks["refund"]
    assert set(first) == QUOTE_KEYS
    assert (first["id"], first["q"], first["a"], first["chunkIndex"]) == (refund.id, refund.q, "", 0)
    assert (first["datasetId"], first["collectionId"]) == (kb.dataset.id, kb.collection.id)
    assert (first["sourceName"], first["sourceId"]) == ("policies.md", kb.collection.id)
    assert {s["type"] for s in first["score"]} >= {"embedding", "fullText", "rrf"}
    assert all(set(s) == {"type", "value", "index"} for s in first["score"])


def test_search_settings_of_the_app_are_used(app, app_key, kb):
    link(app, kb.dataset, search_mode="fullTextRecall", top_k=1, limit=200)
    node = search_node(post(ask("warranty appliance defects", detail=True), key=app_key).json())
    assert (node["searchMode"], node["limit"], node["topK"]) == ("fullTextRecall", 200, 1)
    assert [q["q"] for q in node["quoteList"]] == [CHUNKS["warranty"]]


def test_stream_detail_announces_the_search_first_and_sends_it_in_flow_responses(grounded_app, app_key, kb):
    events = post(ask(REFUND_QUESTION, stream=True, detail=True), key=app_key).events()
    statuses = [json.loads(data) for name, data in events if name == "flowNodeStatus"]
    assert statuses == [{"status": "running", "name": "Dataset search"}, {"status": "running", "name": "AI Chat"}]
    names = [name for name, _ in events]
    assert names.index("flowNodeStatus") < names.index("answer") < names.index("flowResponses")
    flow = json.loads(next(data for name, data in events if name == "flowResponses"))
    assert [n["moduleType"] for n in flow] == ["datasetSearchNode", "chatNode"]
    assert flow[0]["quoteList"][0]["id"] == kb.chunks["refund"].id


def test_the_stored_record_keeps_the_quotes_for_get_res_data_and_the_records(grounded_app, app_key, api, kb):
    body = post(ask(REFUND_QUESTION, chatId="c1", responseChatItemId="ai-1", detail=True), key=app_key).json()
    ai = ChatItem.objects.get(data_id="ai-1")
    assert ai.response_data == body["responseData"]

    res = api.get("/api/core/chat/getResData", {"appId": grounded_app.id, "chatId": "c1", "dataId": "ai-1"})
    assert res.status_code == 200
    assert search_node(res.json()["data"])["quoteList"][0]["id"] == kb.chunks["refund"].id

    records = api.post("/api/core/chat/getPaginationRecords", {"appId": grounded_app.id, "chatId": "c1"}, format="json")
    human, answer = records.json()["data"]["list"]
    assert "totalQuoteList" not in human
    assert [q["id"] for q in answer["totalQuoteList"]] == [q["id"] for q in search_node(body)["quoteList"]]
    assert kb.chunks["refund"].id in {q["id"] for q in answer["totalQuoteList"]}


def test_search_tokens_are_billed_with_the_turn(grounded_app, app_key):
    body = post(ask(REFUND_QUESTION, detail=True), key=app_key).json()
    used = ApiKey.objects.get(pk=app_key.row.pk).usage_points
    assert search_node(body)["tokens"] > 0
    assert used == body["usage"]["total_tokens"] + search_node(body)["tokens"]


# --- with a language model: the quotes reach the prompt -------------------------------------


def sent_messages(response) -> list[dict]:
    """What the fake provider was sent (its `[[echo-messages]]` answer)."""
    return json.loads(answer_text(response))


def test_the_quotes_reach_the_prompt_through_fastgpts_quote_template(grounded_app, app_key, provider_models, kb):
    grounded_app.system_prompt = "You are the store's assistant."
    grounded_app.save()
    messages = sent_messages(post(ask(f"{REFUND_QUESTION} [[echo-messages]]"), key=app_key))
    assert messages[0] == {"role": "system", "content": "You are the store's assistant."}
    question = messages[-1]
    assert question["role"] == "user"
    assert "<Reference>" in question["content"]
    assert '"sourceName": "policies.md"' in question["content"]
    assert f'"id": "{kb.chunks["refund"].id}"' in question["content"]
    assert CHUNKS["refund"] in question["content"]
    assert question["content"].rstrip().endswith(f'Question: """{REFUND_QUESTION} [[echo-messages]]"""')
    head, tail = DEFAULT_QUOTE_PROMPT.split("{{quote}}")
    assert question["content"].startswith(head)


def test_the_quote_template_and_prompt_are_overridable_per_app(app, app_key, provider_models, kb):
    link(app, kb.dataset, quote_template="<<{{index}}:{{source}}:{{q}}>>", quote_prompt="KNOW:\n{{quote}}\nASK: {{question}}")
    content = sent_messages(post(ask("warranty appliance [[echo-messages]]"), key=app_key))[-1]["content"]
    assert content.startswith("KNOW:\n<<1:policies.md:")
    assert f":{CHUNKS['warranty']}>>" in content
    assert content.endswith("ASK: warranty appliance [[echo-messages]]")


def test_text_of_a_quote_is_not_read_for_variables(app, app_key, provider_models, team):
    kb = knowledge_base(team, name="tricky")
    from tests.datasets.search.helpers import add_chunk

    add_chunk(kb.collection, "Warranty trick {{question}} and {{quote}} stay as written", chunk_index=9)
    link(app, kb.dataset, search_mode="fullTextRecall", top_k=1)
    content = sent_messages(post(ask("Warranty trick [[echo-messages]]"), key=app_key))[-1]["content"]
    assert "Warranty trick {{question}} and {{quote}} stay as written" in content


def test_only_the_new_question_is_grounded_history_stays_as_asked(grounded_app, app_key, provider_models):
    post(ask("Where is my parcel? shipping", chatId="h1"), key=app_key)
    messages = sent_messages(post(ask(f"{REFUND_QUESTION} [[echo-messages]]", chatId="h1"), key=app_key))
    assert messages[0] == {"role": "user", "content": "Where is my parcel? shipping"}
    assert "<Reference>" in messages[-1]["content"]


def test_nothing_found_sends_the_question_unchanged(app, app_key, kb, provider_models):
    link(app, kb.dataset, search_mode="fullTextRecall")
    messages = sent_messages(post(ask(f"{UNRELATED_QUESTION} [[echo-messages]]"), key=app_key))
    assert messages[-1] == {"role": "user", "content": f"{UNRELATED_QUESTION} [[echo-messages]]"}


def test_grounded_stream_with_a_model(grounded_app, app_key, provider_models, kb):
    response = post(ask(f"{REFUND_QUESTION} [[echo-messages]]", stream=True, detail=True), key=app_key)
    prompt = json.loads(stream_text(response))[-1]["content"]
    assert CHUNKS["refund"] in prompt
    flow = json.loads(next(data for name, data in response.events() if name == "flowResponses"))
    assert [n["moduleType"] for n in flow] == ["datasetSearchNode", "chatNode"]


# --- a failing search -----------------------------------------------------------------------


@pytest.fixture
def provider_kb(team, provider_models, settings):
    """A dataset embedded by the fake provider (its queries honour [[fail]] and [[delay]])."""
    settings.EMBEDDING_HTTP_RETRIES = 0
    return knowledge_base(team, name="Provider KB", vector_model="fake-embedding")


@pytest.mark.parametrize("stream", [False, True])
def test_a_failed_search_answers_502_and_stores_the_turn_with_the_error(app, app_key, provider_kb, provider_models, stream):
    link(app, provider_kb.dataset)
    response = post(ask("refund [[fail:503]]", chatId="f1", stream=stream, detail=True), key=app_key)
    assert response.status_code == 502
    body = response.json()
    assert body["statusText"] == "upstreamError" and "Dataset search failed" in body["message"]
    assert body["error"]["message"] == body["message"]
    assert not [r for r in provider_models.requests if r["path"].endswith("/chat/completions")]

    human, ai = ChatItem.objects.filter(chat__chat_id="f1").order_by("id")
    assert human.text == "refund [[fail:503]]"
    assert ai.text == "" and "Dataset search failed" in ai.error_msg
    node = search_node(ai.response_data)
    assert node["errorText"] == ai.error_msg and node["quoteList"] == []


def test_a_slow_embedding_provider_answers_504(app, app_key, team, fake_provider, settings):
    from tests.live_servers import provider_models_json

    declared = json.loads(provider_models_json(fake_provider))
    for model in declared:
        if model["name"] == "fake-embedding":
            model["timeout"] = 0.2
    settings.AI_MODELS, settings.AI_MODELS_FILE, settings.DEFAULT_LLM_MODEL = json.dumps(declared), "", "fake-llm"
    kb = knowledge_base(team, name="Slow KB", vector_model="fake-embedding")
    link(app, kb.dataset)
    response = post(ask("refund [[delay:1]]", chatId="slow"), key=app_key)
    assert response.status_code == 504
    assert response.json()["statusText"] == "upstreamTimeout"
    ai = ChatItem.objects.get(chat__chat_id="slow", obj="AI")
    assert "Dataset search failed" in ai.error_msg
    assert not [r for r in fake_provider.requests if r["path"].endswith("/chat/completions")]


# --- questions with images ------------------------------------------------------------------

IMAGE = {"type": "image_url", "image_url": {"url": "https://img.example/receipt.png"}}


def test_an_image_only_question_is_not_searched(grounded_app, app_key):
    response = post({"detail": True, "messages": [{"role": "user", "content": [IMAGE]}]}, key=app_key)
    assert answer_text(response) == NOTHING_FOUND_ANSWER
    node = search_node(response.json())
    assert node["quoteList"] == [] and node["notes"] == ["the question has no text to search with."]
    assert node["tokens"] == 0


def test_the_images_of_a_grounded_question_are_kept_after_the_quote_prompt(grounded_app, app_key, provider_models):
    content = [{"type": "text", "text": f"{REFUND_QUESTION} [[echo-messages]]"}, IMAGE]
    sent = sent_messages(post({"messages": [{"role": "user", "content": content}]}, key=app_key))[-1]["content"]
    assert [part["type"] for part in sent] == ["text", "image_url"]
    assert CHUNKS["refund"] in sent[0]["text"] and sent[1] == IMAGE


def test_the_apps_search_modes_are_the_pipelines():
    from chat.models import DatasetSearchMode
    from datasets.search.pipeline import SEARCH_MODES

    assert tuple(DatasetSearchMode.values) == SEARCH_MODES
