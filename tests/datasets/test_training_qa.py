"""`qa` training: the language model writes question/answer pairs from each chunk; they become
data items (then embedded as usual). The prompt, the parser, billing, retries with backoff,
the final failure on the chunk and its collection, retraining; through the API too."""

import json
from datetime import timedelta

import pytest

from datasets import training, training_qa
from datasets.models import Collection, CollectionStatus, Data, Dataset, QaChunk, TrainingBill, TrainingState
from datasets.services.data import NewData
from datasets.training_qa import QaUnparsable, parse_qa, qa_prompt, queue_qa
from keys.models import ApiKey
from tests.datasets.api.helpers import assert_error, create_text, post
from tests.datasets.storage_helpers import make_collection

pytestmark = pytest.mark.django_db

IMMEDIATE = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}}
PAIRS = "Q1: What does the installer do?\nA1: It copies the files.\nQ2: How long does it take?\nA2: About a minute."


@pytest.fixture(autouse=True)
def _training_settings(settings):
    settings.TRAINING_RETRY_BASE_SECONDS = 10
    settings.TRAINING_MAX_ATTEMPTS = 5
    settings.EMBEDDING_HTTP_RETRIES = 0


@pytest.fixture
def qa_dataset(team, provider_models) -> Dataset:
    return Dataset.objects.create(team=team, name="qa", vector_model="fake-embedding", agent_model="fake-llm")


@pytest.fixture
def qa_collection(qa_dataset, global_key) -> Collection:
    return make_collection(qa_dataset, training_type="qa", usage_key=global_key.row)


def answer(text: str) -> str:
    """A chunk whose model answer is exactly ``text`` (the fake provider's directive)."""
    return f"Source text. [[answer:{text}]]"


def chunk_state(chunk: QaChunk) -> tuple[str, int]:
    chunk.refresh_from_db()
    return chunk.training_state, chunk.train_attempts


# --- the parser -----------------------------------------------------------------------------


def test_parse_numbered_pairs_with_multiline_answers():
    text = "Q1: What is it?\nA1: A tool.\nIt has two lines.\n\nQ2: Who made it?\nA2: A team."
    assert parse_qa(text) == [("What is it?", "A tool.\nIt has two lines."), ("Who made it?", "A team.")]


@pytest.mark.parametrize(
    "text",
    [
        "Here are the pairs you asked for:\n\nQ1: What is it?\nA1: A tool.\nQ2: Who made it?\nA2: A team.\nHope this helps.",
        "Q: What is it?\nA: A tool.\nQ: Who made it?\nA: A team.\nHope this helps.",  # no numbers
        "**Q1:** What is it?\n**A1:** A tool.\n\n**Q2:** Who made it?\n**A2:** A team.\nHope this helps.",  # Markdown
        "- Q1: What is it?\n- A1: A tool.\n- Q7: Who made it?\n- A3: A team.\nHope this helps.",  # wrong numbers
        "q1： What is it?\na1： A tool.\nQ2 : Who made it?\nA2 : A team.\nHope this helps.",  # full-width colons
    ],
)
def test_parse_is_robust_to_the_usual_variations(text):
    assert parse_qa(text) == [("What is it?", "A tool."), ("Who made it?", "A team.\nHope this helps.")]


def test_parse_chinese_pairs_and_drops_a_question_without_answer():
    text = "Q1: 如何重置密码？\nA1: 在设置页点击重置。\nQ2: 没有答案的问题？\nQ3: 支持哪些语言？\nA3: 中文和英文。"
    assert parse_qa(text) == [("如何重置密码？", "在设置页点击重置。"), ("支持哪些语言？", "中文和英文。")]


@pytest.mark.parametrize("text", ["", "   ", "I cannot help with that.", "A1: an answer without a question"])
def test_an_answer_without_pairs_is_unparsable(text):
    with pytest.raises(QaUnparsable, match="no question/answer pair|answered nothing"):
        parse_qa(text)


def test_the_prompt_holds_the_text_the_format_and_custom_instructions():
    default = qa_prompt("Refunds take 30 days.")
    assert "Refunds take 30 days." in default and "Q1:" in default and "A1:" in default
    assert "{{" not in default and "at most 50 questions" in default
    custom = qa_prompt("Refunds take 30 days.", "Ask only about money ({{theme}}).")
    assert custom.startswith("Ask only about money (it may cover several topics).")
    assert "at most 50 questions" not in custom
    assert "Q1:" in custom and "Refunds take 30 days." in custom  # the format and text always follow


# --- generation -----------------------------------------------------------------------------


def test_a_chunk_becomes_items_embedded_and_billed(qa_collection, global_key, provider_models, settings,
                                                   django_capture_on_commit_callbacks):
    settings.TASKS = IMMEDIATE
    with django_capture_on_commit_callbacks(execute=True):
        result = queue_qa(collection=qa_collection, items=[NewData(q=answer(PAIRS), chunk_index=4)])
    assert result.insert_len == 1
    assert not QaChunk.objects.exists()  # done: replaced by its items
    items = list(Data.objects.filter(collection=qa_collection).order_by("q"))
    assert [(d.q, d.a, d.chunk_index) for d in items] == [
        ("How long does it take?", "About a minute.", 4),
        ("What does the installer do?", "It copies the files.", 4),
    ]
    assert {d.training_state for d in items} == {TrainingState.READY}  # embedded by the usual training
    qa_collection.refresh_from_db()
    assert qa_collection.status == CollectionStatus.READY
    # The model was asked with the QA prompt around the chunk's text.
    [llm_call] = [r for r in provider_models.requests if r["path"].endswith("/chat/completions")]
    sent = llm_call["body"]["messages"][0]["content"]
    assert llm_call["body"]["model"] == "fake-llm" and "Source text." in sent and "Q1:" in sent
    # Its tokens (the fake counts words) and the embeddings' are the key's usage points.
    llm_tokens = len(sent.split()) + len(PAIRS.split())
    points = ApiKey.objects.get(pk=global_key.row.pk).usage_points
    assert points > llm_tokens


def test_pushed_qa_items_bill_the_training_bill(qa_collection, team, settings, django_capture_on_commit_callbacks):
    bill = TrainingBill.objects.create(team=team, dataset=qa_collection.dataset)
    with django_capture_on_commit_callbacks(execute=False):
        queue_qa(collection=qa_collection, items=[NewData(q=answer(PAIRS))], bill_id=bill.pk)
    report = training_qa.generate_qa(collection_id=qa_collection.pk)
    assert report.generated == 1 and report.tokens > 0
    bill.refresh_from_db()
    assert bill.tokens == report.tokens
    assert set(Data.objects.values_list("bill_id", flat=True)) == {bill.pk}


def test_queue_skips_empty_long_and_repeated_items(qa_collection, django_capture_on_commit_callbacks):
    with django_capture_on_commit_callbacks():
        result = queue_qa(
            collection=qa_collection,
            items=[NewData(q="  "), NewData(q="one"), NewData(q="one"), NewData(q="x" * 200_000), NewData(q="one", a="two")],
        )
    assert result.insert_len == 2
    assert [(s["index"], s["reason"].split()[0]) for s in result.skipped] == [(0, "q"), (2, "duplicate"), (3, "q")]
    assert sorted(QaChunk.objects.values_list("text", flat=True)) == ["one", "one\ntwo"]


def test_a_provider_failure_is_retried_with_backoff_then_shown(qa_collection, clock, settings):
    queue_qa(collection=qa_collection, items=[NewData(q="good " + answer(PAIRS), chunk_index=0),
                                              NewData(q="bad [[fail:500]]", chunk_index=1)])
    good, bad = QaChunk.objects.get(chunk_index=0), QaChunk.objects.get(chunk_index=1)
    report = training_qa.generate_qa(collection_id=qa_collection.pk)
    assert (report.generated, report.retrying, report.failed) == (1, 1, 0)
    assert not QaChunk.objects.filter(pk=good.pk).exists()
    assert chunk_state(bad) == (TrainingState.PENDING, 1)
    assert bad.train_next_at == clock.now + timedelta(seconds=10)
    assert "HTTP 500" in bad.train_error and "attempt 1 of 5; retrying" in bad.train_error
    qa_collection.refresh_from_db()
    assert qa_collection.status == CollectionStatus.TRAINING

    training_qa.generate_qa(collection_id=qa_collection.pk)  # not due yet: untouched
    assert chunk_state(bad) == (TrainingState.PENDING, 1)
    waits = []
    for attempt in range(2, 6):
        waits.append(bad.train_next_at - clock.now)
        clock.now = bad.train_next_at
        training_qa.generate_qa(collection_id=qa_collection.pk)
        assert chunk_state(bad)[1] == attempt
    assert waits == [timedelta(seconds=s) for s in (10, 20, 40, 80)]
    assert chunk_state(bad) == (TrainingState.ERROR, 5)
    assert "(after 5 attempts)" in bad.train_error
    qa_collection.refresh_from_db()
    assert qa_collection.status == CollectionStatus.ERROR and qa_collection.error_message == bad.train_error


def test_an_unparsable_answer_is_a_retried_failure_and_its_tokens_are_billed(qa_collection, global_key):
    queue_qa(collection=qa_collection, items=[NewData(q=answer("Sorry, I cannot do that."))])
    report = training_qa.generate_qa(collection_id=qa_collection.pk)
    assert report.retrying == 1 and report.tokens > 0
    chunk = QaChunk.objects.get()
    assert "no question/answer pair" in chunk.train_error and "Sorry, I cannot do that." in chunk.train_error
    assert not Data.objects.exists()
    assert ApiKey.objects.get(pk=global_key.row.pk).usage_points == report.tokens


def test_a_failure_queues_a_deferred_retry(qa_collection, clock, django_capture_on_commit_callbacks):
    from django_tasks_db.models import DBTaskResult

    queue_qa(collection=qa_collection, items=[NewData(q="x [[fail:503]]")])
    training_qa.generate_qa(collection_id=qa_collection.pk)
    [task] = DBTaskResult.objects.filter(task_path="datasets.tasks.generate_qa", run_after__isnull=False)
    assert task.run_after == clock.now + timedelta(seconds=10)
    assert task.args_kwargs["args"] == [qa_collection.pk]


def test_a_builtin_agent_model_fails_the_chunk_with_a_message(team, settings):
    settings.TRAINING_MAX_ATTEMPTS = 1
    dataset = Dataset.objects.create(team=team, name="offline", agent_model="gone-llm")
    collection = make_collection(dataset, training_type="qa")
    queue_qa(collection=collection, items=[NewData(q="text")])
    training_qa.generate_qa(collection_id=collection.pk)
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.ERROR
    assert "agentModel 'gone-llm' is not a language model declared in AI_MODELS" in collection.error_message


def test_retrain_failed_puts_failed_chunks_back(qa_collection, settings, django_capture_on_commit_callbacks):
    settings.TRAINING_MAX_ATTEMPTS = 1
    settings.TASKS = IMMEDIATE
    queue_qa(collection=qa_collection, items=[NewData(q="flaky [[fail:500]]")])
    training_qa.generate_qa(collection_id=qa_collection.pk)
    chunk = QaChunk.objects.get()
    assert chunk_state(chunk) == (TrainingState.ERROR, 1)
    QaChunk.objects.filter(pk=chunk.pk).update(text=answer(PAIRS))  # the provider "recovers"
    with django_capture_on_commit_callbacks(execute=True):
        assert training.retrain_failed() == 1
    assert not QaChunk.objects.exists()
    assert Data.objects.filter(collection=qa_collection, training_state=TrainingState.READY).count() == 2
    qa_collection.refresh_from_db()
    assert qa_collection.status == CollectionStatus.READY and qa_collection.error_message == ""


def test_a_deleted_collection_takes_its_chunks(qa_collection):
    queue_qa(collection=qa_collection, items=[NewData(q="text")])
    qa_collection.delete()
    assert not QaChunk.objects.exists()
    assert training_qa.generate_qa(collection_id=qa_collection.pk).as_dict()["generated"] == 0


# --- through the API ------------------------------------------------------------------------


def test_create_text_with_qa_counts_pending_chunks_then_trains(api, qa_dataset, settings,
                                                                django_capture_on_commit_callbacks):
    text = "First part. " + answer(PAIRS)
    with django_capture_on_commit_callbacks(execute=False):
        response = create_text(api, dataset_id=qa_dataset.pk, text=text, trainingType="qa")
    assert response.status_code == 200, response.content
    collection_id = response.json()["data"]["collectionId"]
    assert response.json()["data"]["results"]["insertLen"] == 1
    detail = api.get(f"/api/core/dataset/collection/detail?id={collection_id}").json()["data"]
    assert detail["trainingType"] == "qa" and detail["trainingAmount"] == 1 and detail["dataAmount"] == 0
    settings.TASKS = IMMEDIATE
    with django_capture_on_commit_callbacks(execute=True):
        training_qa.generate_qa(collection_id=collection_id)
    detail = api.get(f"/api/core/dataset/collection/detail?id={collection_id}").json()["data"]
    assert detail["trainingAmount"] == 0 and detail["dataAmount"] == 2
    listed = post(api, "data/v2/list", {"collectionId": collection_id}).json()["data"]["list"]
    assert sorted(item["q"] for item in listed) == ["How long does it take?", "What does the installer do?"]


def test_push_data_with_qa_uses_the_clients_prompt(api, qa_dataset, provider_models,
                                                     django_capture_on_commit_callbacks):
    collection = make_collection(qa_dataset, type="virtual")
    body = {"collectionId": collection.pk, "trainingType": "qa", "prompt": "Only ask about prices.",
            "data": [{"q": answer(PAIRS), "a": "extra detail"}, {"q": ""}]}
    with django_capture_on_commit_callbacks(execute=False):
        response = post(api, "data/pushData", body)
    assert response.status_code == 200, response.content
    assert response.json()["data"]["insertLen"] == 1
    chunk = QaChunk.objects.get()
    assert chunk.prompt == "Only ask about prices." and chunk.text.endswith("\nextra detail")
    training_qa.generate_qa(collection_id=collection.pk)
    sent = provider_models.requests[-1]["body"]["messages"][0]["content"]
    assert sent.startswith("Only ask about prices.") and "extra detail" in sent
    assert Data.objects.filter(collection=collection).count() == 2
    collection.refresh_from_db()
    assert collection.usage_key_id is not None  # the pushing key pays for the model's tokens


def test_an_error_shows_in_the_collection_list(api, qa_dataset, settings, django_capture_on_commit_callbacks):
    settings.TRAINING_MAX_ATTEMPTS = 1
    with django_capture_on_commit_callbacks(execute=False):
        collection_id = create_text(api, dataset_id=qa_dataset.pk, text="x [[fail:500]]", trainingType="qa").json()["data"]["collectionId"]
    training_qa.generate_qa(collection_id=collection_id)
    [item] = post(api, "collection/listV2", {"datasetId": qa_dataset.pk}).json()["data"]["list"]
    assert item["_id"] == collection_id and item["trainingAmount"] == 0
    detail = api.get(f"/api/core/dataset/collection/detail?id={collection_id}").json()["data"]
    assert json.dumps(detail).count("HTTP 500") >= 1


@pytest.mark.parametrize("sent, longest", [({}, 8000), ({"chunkSettingMode": "custom", "chunkSize": 500}, 500)])
def test_qa_chunks_are_cut_larger_unless_a_size_is_sent(api, qa_dataset, sent, longest,
                                                        django_capture_on_commit_callbacks):
    """FastGPT's qa mode: chunks of the language model's context, at most 8,000 characters
    (chunk mode: 1,000), unless the client sends a chunkSize."""
    text = "\n\n".join(f"Paragraph {n}: " + "the installer copies files and checks them. " * 8 for n in range(60))
    with django_capture_on_commit_callbacks(execute=False):
        response = create_text(api, dataset_id=qa_dataset.pk, text=text, trainingType="qa", **sent)
    assert response.status_code == 200, response.content
    chunks = [c.text for c in QaChunk.objects.filter(collection_id=response.json()["data"]["collectionId"])]
    assert longest * 0.6 < max(map(len, chunks)) <= longest * 1.2  # FastGPT's 0.8–1.2 × chunkSize window
    non_space = lambda t: len("".join(t.split()))  # noqa: E731
    assert sum(map(non_space, chunks)) >= non_space(text)  # nothing lost (an overlap may repeat some)
