"""The app admin: linking datasets (only the app's team's) and the dataset search settings, and
the transcript showing what a grounded answer quoted."""

import pytest
from django.contrib.auth.models import User

from chat.models import App, AppDataset, AppDatasetSearch
from datasets.models import Dataset, DatasetType
from tests.chat.admin_forms import app_form
from tests.chat.completion_calls import ask, post
from tests.chat.grounding_helpers import CHUNKS, REFUND_QUESTION, knowledge_base, link
from tests.datasets.search.helpers import make_dataset

APPS = "/admin/chat/app/"


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def change_url(app: App) -> str:
    return f"{APPS}{app.pk}/change/"


def fields_of(app: App) -> dict:
    return {"team": app.team_id, "name": app.name, "pk": app.pk}


def test_the_change_page_offers_only_the_teams_datasets(admin_client, app, team, other_team):
    ours = make_dataset(team, "Our handbook")
    theirs = make_dataset(other_team, "Their handbook")
    Dataset.objects.create(team=team, name="A folder", type=DatasetType.FOLDER, vector_model="x", agent_model="y")
    html = admin_client.get(change_url(app)).content.decode()
    assert "Linked datasets" in html and "Dataset search settings" in html
    assert f'<option value="{ours.pk}">acme / Our handbook' in html
    assert theirs.name not in html and "A folder" not in html
    # FastGPT's default quote prompt is shown as the placeholder of an empty field.
    assert "&lt;Reference&gt;" in html


def test_linking_a_dataset_and_saving_settings(admin_client, app, team):
    kb = make_dataset(team, "Handbook")
    response = admin_client.post(
        change_url(app), app_form(fields_of(app), links=[kb], settings={"search_mode": "fullTextRecall", "top_k": "3"})
    )
    assert response.status_code == 302, response.context and response.context["errors"]
    assert list(AppDataset.objects.filter(app=app).values_list("dataset_id", flat=True)) == [kb.pk]
    settings = AppDatasetSearch.objects.get(app=app)
    assert (settings.search_mode, settings.top_k, settings.limit) == ("fullTextRecall", 3, 3000)


def test_another_teams_dataset_is_refused_on_the_change_page(admin_client, app, other_team):
    theirs = make_dataset(other_team, "Their handbook")
    response = admin_client.post(change_url(app), app_form(fields_of(app), links=[theirs]))
    assert response.status_code == 200  # the form again, with the error
    assert "Select a valid choice" in response.content.decode()
    assert not AppDataset.objects.exists()


def test_another_teams_dataset_is_refused_when_adding_an_app(admin_client, team, other_team):
    theirs = make_dataset(other_team, "Their handbook")
    response = admin_client.post(f"{APPS}add/", app_form({"team": team.pk, "name": "New bot"}, links=[theirs]))
    assert response.status_code == 200
    assert "belongs to another team" in response.content.decode()
    assert not App.objects.filter(name="New bot").exists() and not AppDataset.objects.exists()


def test_adding_an_app_with_its_teams_dataset(admin_client, team):
    ours = make_dataset(team, "Handbook")
    response = admin_client.post(f"{APPS}add/", app_form({"team": team.pk, "name": "New bot"}, links=[ours]))
    assert response.status_code == 302
    app = App.objects.get(name="New bot")
    assert list(app.dataset_links.values_list("dataset_id", flat=True)) == [ours.pk]
    assert not AppDatasetSearch.objects.filter(app=app).exists()  # defaults until edited


def test_moving_an_app_to_another_team_with_its_links_is_refused(admin_client, app, team, other_team):
    ours = make_dataset(team, "Handbook")
    row = AppDataset.objects.create(app=app, dataset=ours)
    moved = {**fields_of(app), "team": other_team.pk}
    response = admin_client.post(change_url(app), app_form(moved, existing=[row]))
    assert response.status_code == 200
    app.refresh_from_db()
    assert app.team_id == team.pk


def test_datasets_of_different_vector_models_are_refused(admin_client, app, team):
    first = make_dataset(team, "Lexical")
    second = make_dataset(team, "Semantic", vector_model="text-embedding-3-small")
    response = admin_client.post(change_url(app), app_form(fields_of(app), links=[first, second]))
    assert response.status_code == 200
    assert "different vector models" in response.content.decode()
    assert not AppDataset.objects.exists()


def test_settings_out_of_range_or_an_undeclared_model_are_refused(admin_client, app, team):
    kb = make_dataset(team, "Handbook")
    response = admin_client.post(
        change_url(app), app_form(fields_of(app), links=[kb], settings={"similarity": "1.5", "rerank_model": "nope"})
    )
    assert response.status_code == 200
    html = response.content.decode()
    assert "less than or equal to 1" in html and "Select a valid choice" in html
    assert not AppDatasetSearch.objects.exists() and not AppDataset.objects.exists()


def test_the_transcript_lists_the_quotes_under_the_answer(admin_client, app, app_key, team):
    kb = knowledge_base(team)
    link(app, kb.dataset)
    post(ask(REFUND_QUESTION, chatId="quoted"), key=app_key)
    chat = app.chats.get(chat_id="quoted")
    html = admin_client.get(f"/admin/chat/chat/{chat.pk}/change/").content.decode()
    assert "Quoted knowledge (" in html
    assert "[1] policies.md" in html and CHUNKS["refund"] in html
    assert kb.chunks["refund"].id in html
    assert html.index("Quoted knowledge") > html.index("not a generated answer")


def test_the_demo_app_of_bootstrap_demo_can_be_linked_to_a_dataset_of_its_team(admin_client):
    from io import StringIO

    from django.core.management import call_command

    call_command("bootstrap_demo", stdout=StringIO())
    demo = App.objects.get(name="Demo app")
    manuals = make_dataset(demo.team, "Manuals")
    assert f'<option value="{manuals.pk}">demo / Manuals' in admin_client.get(change_url(demo)).content.decode()
    response = admin_client.post(change_url(demo), app_form(fields_of(demo), links=[manuals]))
    assert response.status_code == 302
    assert list(demo.dataset_links.values_list("dataset_id", flat=True)) == [manuals.pk]
