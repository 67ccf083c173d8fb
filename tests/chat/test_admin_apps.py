"""The app admin: the model is picked from the declared ones (an undeclared name is refused,
the default preselected), and an app never moves to another team."""

import pytest
from django.contrib.auth.models import User

from chat.models import App
from tests.chat.admin_forms import app_form


@pytest.fixture
def admin_client(client, db):
    client.force_login(User.objects.create_superuser("root", "root@example.com", "pw"))
    return client


def test_the_model_is_a_dropdown_of_declared_models_with_the_default_preselected(admin_client, provider_models):
    html = admin_client.get("/admin/chat/app/add/").content.decode()
    assert '<select name="model"' in html
    assert '<option value="" selected>default (fake-llm)</option>' in html
    assert '<option value="fake-llm">fake-llm</option>' in html
    assert "fake-embedding</option>" not in html  # not a chat model


def test_an_undeclared_model_is_refused(admin_client, team, provider_models):
    response = admin_client.post("/admin/chat/app/add/", app_form({"team": team.pk, "name": "Bot"}, model="gpt-typo-model"))
    assert response.status_code == 200
    assert "Select a valid choice" in response.content.decode()
    assert not App.objects.exists()
    saved = admin_client.post("/admin/chat/app/add/", app_form({"team": team.pk, "name": "Bot"}, model="fake-llm"))
    assert saved.status_code == 302, saved.context["adminform"].form.errors
    assert App.objects.get().model == "fake-llm"


def test_an_app_cannot_move_to_another_team(admin_client, app, other_team, app_key):
    response = admin_client.post(f"/admin/chat/app/{app.pk}/change/", app_form({"team": other_team.pk, "name": "Moved"}))
    assert response.status_code == 200
    assert "cannot move to another team" in response.content.decode()
    app.refresh_from_db()
    assert (app.team_id, app.name) == (app_key.row.team_id, "Support bot")
    # Other changes still save.
    admin_client.post(f"/admin/chat/app/{app.pk}/change/", app_form({"team": app.team_id, "name": "Renamed"}))
    app.refresh_from_db()
    assert app.name == "Renamed"
