"""End to end, as a new user would: a live server and its worker; a text uploaded through the
API (collection/create/text), the client waiting for trainingAmount 0, the dataset linked to
the app, then questions asked with the openai SDK and with `requests` (stream and not,
`detail` on and off). The offline responder must answer with the uploaded passage; a
language model (the fake provider) must be sent it in the prompt."""

import json
import time

import openai
import pytest
import requests

from chat.models import App, AppDataset
from providers.registry import BUILTIN_EMBEDDING, BUILTIN_LLM

pytestmark = pytest.mark.usefixtures("transactional_db")

WAIT_SECONDS = 90  # a deadline for the worker, not a timing assertion
DOCUMENT = (
    "Solar panel maintenance\n\n"
    "Clean the solar panels every three months with soft water; never use a pressure washer.\n\n"
    "Inverter faults\n\n"
    "When the inverter shows error E42, switch it off for ten minutes and restart it."
)
QUESTION = "How often should I clean the solar panels?"
PASSAGE = "Clean the solar panels every three months with soft water"


def api_call(base: str, key, path: str, body: dict) -> dict:
    response = requests.post(f"{base}/api{path}", json=body, headers={"Authorization": key.header}, timeout=30)
    envelope = response.json()
    assert response.status_code == 200 and envelope["code"] == 200, envelope
    return envelope["data"]


def uploaded_dataset(base: str, key, *, vector_model: str) -> str:
    """A dataset holding DOCUMENT, uploaded as text and trained by the worker."""
    dataset_id = api_call(base, key, "/core/dataset/create", {"name": "Manuals", "vectorModel": vector_model})
    created = api_call(base, key, "/core/dataset/collection/create/text", {
        "datasetId": dataset_id, "name": "solar-manual.txt", "text": DOCUMENT, "trainingType": "chunk",
        "chunkSettingMode": "custom", "chunkSplitter": "\n\n",
    })
    assert created["collectionId"]
    deadline = time.monotonic() + WAIT_SECONDS
    while True:
        page = api_call(base, key, "/core/dataset/collection/listV2", {"datasetId": dataset_id, "pageSize": 10})
        items = page["list"]
        if items and all(i["trainingAmount"] == 0 and i["status"] != "training" for i in items):
            return dataset_id
        if time.monotonic() > deadline:
            pytest.fail(f"the worker did not finish training: {items}")
        time.sleep(0.25)


def chat_post(base: str, key, body: dict, **kwargs) -> requests.Response:
    return requests.post(f"{base}/api/v1/chat/completions", json=body, headers={"Authorization": key.header},
                         timeout=30, **kwargs)


def events(response: requests.Response) -> list[tuple[str | None, str]]:
    found, name = [], None
    for line in response.iter_lines(decode_unicode=True):
        if line.startswith("event:"):
            name = line[6:].strip()
        elif line.startswith("data:"):
            found.append((name, line[5:].strip()))
            name = None
    return found


def streamed_text(found) -> str:
    return "".join(
        (choice["delta"].get("content") or "")
        for name, data in found if name in (None, "answer") and data != "[DONE]"
        for choice in json.loads(data).get("choices", [])
    )


def quotes_of(nodes: list[dict]) -> list[dict]:
    (node,) = [n for n in nodes if n["moduleType"] == "datasetSearchNode"]
    return node["quoteList"]


@pytest.fixture
def linked(live_server_url, global_key, app):
    """link(vector_model, llm) → the dataset id, linked to the app that answers with `llm`."""

    def make(*, vector_model: str, llm: str) -> str:
        dataset_id = uploaded_dataset(live_server_url, global_key, vector_model=vector_model)
        AppDataset.objects.create(app=app, dataset_id=dataset_id)
        App.objects.filter(pk=app.pk).update(model=llm)
        return dataset_id

    return make


def test_offline_responder_answers_from_an_uploaded_document(live_server_url, app_key, global_key, app, linked):
    dataset_id = linked(vector_model=BUILTIN_EMBEDDING, llm=BUILTIN_LLM)
    sdk = openai.OpenAI(base_url=f"{live_server_url}/api/v1", api_key=app_key.plaintext, max_retries=0)

    # The SDK, not streamed: the passage quoted under its source, said to be a quote.
    reply = sdk.chat.completions.create(model="any", messages=[{"role": "user", "content": QUESTION}])
    text = reply.choices[0].message.content
    assert "not a generated answer" in text
    assert "[1] solar-manual.txt" in text and PASSAGE in text
    assert reply.model == BUILTIN_LLM

    # The SDK, streamed: the same answer.
    stream = sdk.chat.completions.create(model="any", messages=[{"role": "user", "content": QUESTION}], stream=True)
    assert "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices) == text

    # detail, not streamed: the search node's quotes, and the ids a client shows sources by.
    body = chat_post(live_server_url, app_key, {
        "chatId": "grounded-1", "responseChatItemId": "answer-1", "detail": True,
        "messages": [{"role": "user", "content": QUESTION}],
    }).json()
    assert [n["moduleType"] for n in body["responseData"]] == ["datasetSearchNode", "chatNode"]
    quotes = quotes_of(body["responseData"])
    assert quotes[0]["sourceName"] == "solar-manual.txt" and PASSAGE in quotes[0]["q"]
    assert quotes[0]["datasetId"] == dataset_id
    stored = requests.get(
        f"{live_server_url}/api/core/chat/getResData", headers={"Authorization": global_key.header}, timeout=30,
        params={"appId": app.pk, "chatId": "grounded-1", "dataId": "answer-1"},
    ).json()["data"]
    assert [q["id"] for q in quotes_of(stored)] == [q["id"] for q in quotes]

    # detail, streamed: the search announced first, its node in flowResponses.
    with chat_post(live_server_url, app_key, {"stream": True, "detail": True,
                                              "messages": [{"role": "user", "content": QUESTION}]}, stream=True) as response:
        found = events(response)
    statuses = [json.loads(data)["name"] for name, data in found if name == "flowNodeStatus"]
    assert statuses == ["Dataset search", "AI Chat"]
    assert PASSAGE in streamed_text(found)
    flow = json.loads(next(data for name, data in found if name == "flowResponses"))
    assert PASSAGE in quotes_of(flow)[0]["q"]


def test_a_language_model_is_sent_the_uploaded_passage(live_server_url, app_key, linked):
    linked(vector_model="fake-embedding", llm="fake-llm")
    sdk = openai.OpenAI(base_url=f"{live_server_url}/api/v1", api_key=app_key.plaintext, max_retries=0)

    reply = sdk.chat.completions.create(
        model="any", messages=[{"role": "user", "content": f"{QUESTION} [[echo-messages]]"}],
        extra_body={"detail": True},
    )
    prompt = json.loads(reply.choices[0].message.content)[-1]["content"]
    assert PASSAGE in prompt and "<Reference>" in prompt and '"sourceName": "solar-manual.txt"' in prompt
    assert PASSAGE in quotes_of(reply.model_extra["responseData"])[0]["q"]

    stream = sdk.chat.completions.create(
        model="any", messages=[{"role": "user", "content": f"{QUESTION} [[echo-messages]]"}], stream=True,
    )
    streamed = "".join(chunk.choices[0].delta.content or "" for chunk in stream if chunk.choices)
    assert PASSAGE in json.loads(streamed)[-1]["content"]


def test_the_embedding_provider_failing_fails_the_turn_with_502(live_server_url, app_key, linked):
    linked(vector_model="fake-embedding", llm="fake-llm")
    sdk = openai.OpenAI(base_url=f"{live_server_url}/api/v1", api_key=app_key.plaintext, max_retries=0)
    with pytest.raises(openai.APIStatusError) as caught:
        sdk.chat.completions.create(model="any", messages=[{"role": "user", "content": "solar [[fail:400]]"}])
    assert caught.value.status_code == 502
    assert "Dataset search failed" in caught.value.message
