"""The knowledge-base admin: the dataset form enforces the API's rules; collections show their
counts and state and retrain failed items; data shows q/a and indexes, never vectors; deleting
goes through the services (data, vectors and tokens go too)."""

import pytest
from django.contrib.auth.models import User

from datasets.models import Collection, Data, DataIndex, Dataset
from datasets.services.collections import create_empty_collection
from datasets.services.data import NewData, insert_data
from datasets.services.datasets import create_dataset
from datasets.training import train_collection
from providers.registry import BUILTIN_EMBEDDING, BUILTIN_LLM

ADD = "/admin/datasets/dataset/add/"


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def form(team, **fields):
    return {
        "team": team.pk, "parent": "", "type": "dataset", "name": "From admin", "intro": "", "avatar": "",
        "vector_model": BUILTIN_EMBEDDING, "agent_model": BUILTIN_LLM, "vlm_model": "", "status": "active", **fields,
    }


def errors_of(response) -> dict:
    assert response.status_code == 200  # the form again, with its errors
    return response.context["adminform"].form.errors


def test_the_add_form_offers_declared_models_with_the_defaults_selected(admin_client, provider_models):
    page = admin_client.get(ADD)
    fields = page.context["adminform"].form.fields
    assert ("fake-embedding", "fake-embedding") in fields["vector_model"].choices
    assert ("fake-llm", "fake-llm") not in fields["vector_model"].choices
    assert ("fake-llm", "fake-llm") in fields["agent_model"].choices
    initial = page.context["adminform"].form.initial
    assert (initial["vector_model"], initial["agent_model"]) == ("fake-embedding", "fake-llm")
    assert fields["status"].choices[0] == ("active", "active")


def test_a_valid_dataset_is_created(admin_client, team):
    response = admin_client.post(ADD, form(team))
    assert response.status_code == 302
    dataset = Dataset.objects.get(name="From admin")
    assert (dataset.team, dataset.vector_model, dataset.status) == (team, BUILTIN_EMBEDDING, "active")


@pytest.mark.parametrize(
    "fields, field",
    [
        ({"vector_model": "no-such-embedding"}, "vector_model"),
        ({"vector_model": BUILTIN_LLM}, "vector_model"),
        ({"agent_model": "gpt-typo-model"}, "agent_model"),
        ({"status": "whatever"}, "status"),
        ({"vlm_model": "nope"}, "vlm_model"),
    ],
)
def test_undeclared_models_and_unknown_states_are_refused(admin_client, team, fields, field):
    assert field in errors_of(admin_client.post(ADD, form(team, **fields)))
    assert not Dataset.objects.filter(name="From admin").exists()


def test_the_parent_must_be_a_folder_of_the_same_team(admin_client, team, other_team):
    plain = create_dataset(team_id=team.pk, name="Plain", type="dataset")
    theirs = create_dataset(team_id=other_team.pk, name="Their folder", type="folder")
    assert "parent" in errors_of(admin_client.post(ADD, form(team, parent=plain.pk)))
    assert "parent" in errors_of(admin_client.post(ADD, form(team, parent=theirs.pk)))
    mine = create_dataset(team_id=team.pk, name="My folder", type="folder")
    assert admin_client.post(ADD, form(team, parent=mine.pk)).status_code == 302
    assert Dataset.objects.get(name="From admin").parent == mine


def test_a_folder_cannot_move_below_itself(admin_client, team):
    top = create_dataset(team_id=team.pk, name="Top", type="folder")
    below = create_dataset(team_id=team.pk, name="Below", type="folder", parent_id=top.pk)
    url = f"/admin/datasets/dataset/{top.pk}/change/"
    data = form(team, name="Top", parent=below.pk)
    data.pop("team"), data.pop("type")  # read-only once created
    assert "parent" in errors_of(admin_client.post(url, data))


def test_the_vector_model_is_fixed_once_the_dataset_has_data(admin_client, team):
    dataset = create_dataset(team_id=team.pk, name="D", type="dataset")
    url = f"/admin/datasets/dataset/{dataset.pk}/change/"
    assert "vector_model" in admin_client.get(url).context["adminform"].form.fields
    collection = create_empty_collection(team_id=team.pk, dataset_id=dataset.pk, name="C", type="virtual")
    insert_data(collection=collection, items=[NewData(q="x")])
    assert "vector_model" not in admin_client.get(url).context["adminform"].form.fields


def test_dataset_list_shows_counts_and_delete_removes_data(admin_client, team):
    dataset = create_dataset(team_id=team.pk, name="Counted", type="dataset")
    collection = create_empty_collection(team_id=team.pk, dataset_id=dataset.pk, name="C", type="virtual")
    insert_data(collection=collection, items=[NewData(q="a"), NewData(q="b")])
    page = admin_client.get("/admin/datasets/dataset/")
    row = next(r for r in page.context["cl"].result_list if r.pk == dataset.pk)
    assert (row._collections, row._data) == (1, 2)
    admin_client.post(f"/admin/datasets/dataset/{dataset.pk}/delete/", {"post": "yes"})
    assert not Dataset.objects.filter(pk=dataset.pk).exists()
    assert not Data.objects.exists() and not DataIndex.objects.exists()


def test_collections_show_state_counts_and_retrain_failed(admin_client, team):
    dataset = create_dataset(team_id=team.pk, name="D", type="dataset")
    collection = create_empty_collection(team_id=team.pk, dataset_id=dataset.pk, name="C", type="virtual")
    insert_data(collection=collection, items=[NewData(q="a"), NewData(q="b")])
    Data.objects.filter(q="a").update(training_state="error", train_error="provider down", train_attempts=5)
    Collection.objects.filter(pk=collection.pk).update(status="error", error_message="provider down")

    page = admin_client.get("/admin/datasets/collection/")
    html = page.content.decode()
    assert "provider down" in html
    row = next(r for r in page.context["cl"].result_list if r.pk == collection.pk)
    assert (row.data_amount, row.training_amount) == (2, 1)

    response = admin_client.post(
        "/admin/datasets/collection/", {"action": "retrain_failed", "_selected_action": [collection.pk]}, follow=True
    )
    assert "1 failed item(s) queued" in response.content.decode()
    assert Data.objects.get(q="a").training_state == "pending"
    train_collection(collection_id=collection.pk)
    collection.refresh_from_db()
    assert collection.status == "ready"


def test_collections_are_not_added_in_the_admin_and_move_only_into_folders(admin_client, team):
    dataset = create_dataset(team_id=team.pk, name="D", type="dataset")
    collection = create_empty_collection(team_id=team.pk, dataset_id=dataset.pk, name="C", type="virtual")
    folder = create_empty_collection(team_id=team.pk, dataset_id=dataset.pk, name="F", type="folder")
    assert admin_client.get("/admin/datasets/collection/add/").status_code == 403
    url = f"/admin/datasets/collection/{collection.pk}/change/"
    choices = {str(value) for value, _ in admin_client.get(url).context["adminform"].form.fields["parent"].choices}
    assert folder.pk in choices and collection.pk not in choices
    assert admin_client.post(url, {"name": "C2", "parent": folder.pk, "tags": '["x"]'}).status_code == 302
    collection.refresh_from_db()
    assert (collection.name, collection.parent_id, collection.tags) == ("C2", folder.pk, ["x"])


def test_data_page_shows_indexes_but_never_vectors(admin_client, team):
    dataset = create_dataset(team_id=team.pk, name="D", type="dataset")
    collection = create_empty_collection(team_id=team.pk, dataset_id=dataset.pk, name="C", type="virtual")
    insert_data(collection=collection, items=[NewData(q="Visible question", a="Visible answer", indexes=[{"text": "alt index"}])])
    train_collection(collection_id=collection.pk)
    item = Data.objects.get()
    html = admin_client.get(f"/admin/datasets/data/{item.pk}/change/").content.decode()
    assert "Visible question" in html and "alt index" in html
    assert "embedding" not in html.lower()

    response = admin_client.post(f"/admin/datasets/data/{item.pk}/change/", {
        "q": "Edited question", "a": "Visible answer",
        "indexes-TOTAL_FORMS": "0", "indexes-INITIAL_FORMS": "0", "indexes-MIN_NUM_FORMS": "0", "indexes-MAX_NUM_FORMS": "1000",
    })
    assert response.status_code == 302, response.content[:2000]
    item.refresh_from_db()
    assert (item.q, item.training_state) == ("Edited question", "pending")
    assert DataIndex.objects.get(data=item, type="default").text == "Edited question\nVisible answer"


def test_qa_chunks_are_listed_read_only_with_their_errors(admin_client, team):
    from datasets.models import QaChunk

    dataset = create_dataset(team_id=team.pk, name="D", type="dataset")
    collection = create_empty_collection(team_id=team.pk, dataset_id=dataset.pk, name="Manual", type="virtual")
    chunk = QaChunk.objects.create(collection=collection, text="A chunk the model could not read", training_state="error",
                                   train_attempts=5, train_error="The model answered no questions (after 5 attempts)")
    listing = admin_client.get("/admin/datasets/qachunk/?training_state__exact=error").content.decode()
    assert "A chunk the model could not read" in listing and "after 5 attempts" in listing and "Manual" in listing
    page = admin_client.get(f"/admin/datasets/qachunk/{chunk.pk}/change/")
    assert page.status_code == 200 and 'type="submit"' not in page.content.decode().split('id="content-main"')[1]
    assert admin_client.post(f"/admin/datasets/qachunk/{chunk.pk}/change/", {"text": "edited"}).status_code == 403
    assert admin_client.post(f"/admin/datasets/qachunk/{chunk.pk}/delete/", {"post": "yes"}).status_code == 403
    assert admin_client.get("/admin/datasets/qachunk/add/").status_code == 403
    assert QaChunk.objects.get(pk=chunk.pk).text == "A chunk the model could not read"
