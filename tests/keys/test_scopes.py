"""Scopes: app keys stay on their app's chat; teams never see each other's resources."""

import pytest

from datasets.models import Dataset

DATASET_CALLS = [
    ("post", "/api/core/dataset/create", {"name": "x"}),
    ("post", "/api/core/dataset/list", {}),
    ("get", "/api/core/dataset/detail?id=abc", None),
    ("delete", "/api/core/dataset/delete?id=abc", None),
]


@pytest.mark.parametrize("method,url,body", DATASET_CALLS)
def test_an_app_key_is_refused_on_dataset_endpoints_with_403(client_for, app_key, method, url, body):
    response = getattr(client_for(app_key), method)(url, body, format="json")
    assert response.status_code == 403
    assert response.json()["code"] == 403
    assert response.json()["statusText"] == "unAuthorization"
    assert "global key" in response.json()["message"]


@pytest.fixture
def their_dataset(other_team):
    return Dataset.objects.create(team=other_team, name="secret", vector_model="m", agent_model="m")


def test_another_teams_dataset_is_404_on_detail(api, their_dataset):
    response = api.get(f"/api/core/dataset/detail?id={their_dataset.pk}")
    assert response.status_code == 404
    assert response.json()["statusText"] == "unExistDataset"


def test_another_teams_dataset_is_404_on_delete_and_survives(api, their_dataset):
    response = api.delete(f"/api/core/dataset/delete?id={their_dataset.pk}")
    assert response.status_code == 404
    assert Dataset.objects.filter(pk=their_dataset.pk).exists()


def test_another_teams_folder_is_404_as_parent(api, other_team):
    folder = Dataset.objects.create(team=other_team, name="f", type="folder", vector_model="m", agent_model="m")
    assert api.post("/api/core/dataset/create", {"name": "x", "parentId": folder.pk}, format="json").status_code == 404
    assert api.post("/api/core/dataset/list", {"parentId": folder.pk}, format="json").status_code == 404
    assert not Dataset.objects.filter(parent=folder).exists()


def test_another_teams_datasets_never_appear_in_a_list(api, their_dataset):
    assert api.post("/api/core/dataset/list", {}, format="json").json()["data"] == []


def test_a_404_for_another_team_is_identical_to_a_404_for_nothing(api, their_dataset):
    theirs = api.get(f"/api/core/dataset/detail?id={their_dataset.pk}")
    nothing = api.get("/api/core/dataset/detail?id=000000000000000000000000")
    assert theirs.status_code == nothing.status_code == 404
    assert theirs.json() == nothing.json()
