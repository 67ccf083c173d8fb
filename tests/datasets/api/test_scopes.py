"""Every knowledge-base endpoint: an app key is refused (403), and another team's ids are not
found (404) with the very body an unknown id gets."""

import io
import json

import pytest

from datasets.models import Collection, Data, Dataset, TrainingBill
from datasets.services.data import NewData, insert_data

UNKNOWN = "f" * 24


def _file(name="a.txt"):
    f = io.BytesIO(b"hello")
    f.name = name
    return f


# (method, path, body builder taking the ids of the resources to touch, format)
ENDPOINTS = {
    "dataset detail": ("get", "core/dataset/detail?id={dataset}", None),
    "dataset delete": ("delete", "core/dataset/delete?id={dataset}", None),
    "collection create": ("post", "core/dataset/collection/create", lambda i: {"datasetId": i["dataset"], "name": "x"}),
    "collection create in folder": (
        "post", "core/dataset/collection/create", lambda i: {"datasetId": i["own_dataset"], "name": "x", "parentId": i["folder"]},
    ),
    "create text": ("post", "core/dataset/collection/create/text", lambda i: {"datasetId": i["dataset"], "name": "x", "text": "t"}),
    "create link": ("post", "core/dataset/collection/create/link", lambda i: {"datasetId": i["dataset"], "link": "https://example.com"}),
    "create local file": (
        "multipart", "core/dataset/collection/create/localFile",
        lambda i: {"file": _file(), "data": json.dumps({"datasetId": i["dataset"]})},
    ),
    "listV2": ("post", "core/dataset/collection/listV2", lambda i: {"datasetId": i["dataset"]}),
    "list": ("post", "core/dataset/collection/list", lambda i: {"datasetId": i["dataset"]}),
    "collection detail": ("get", "core/dataset/collection/detail?id={collection}", None),
    "collection update": ("put", "core/dataset/collection/update", lambda i: {"id": i["collection"], "name": "n"}),
    "collection move": ("put", "core/dataset/collection/update", lambda i: {"id": i["own_collection"], "parentId": i["folder"]}),
    "collection delete": ("post", "core/dataset/collection/delete", lambda i: {"collectionIds": [i["collection"]]}),
    "collection delete (DELETE)": ("delete", "core/dataset/collection/delete?id={collection}", None),
    "pushData": ("post", "core/dataset/data/pushData", lambda i: {"collectionId": i["collection"], "data": [{"q": "q"}]}),
    "pushData bill": (
        "post", "core/dataset/data/pushData",
        lambda i: {"collectionId": i["own_collection"], "data": [{"q": "q"}], "billId": i["bill"]},
    ),
    "data v2 list": ("post", "core/dataset/data/v2/list", lambda i: {"collectionId": i["collection"]}),
    "data list": ("post", "core/dataset/data/list", lambda i: {"collectionId": i["collection"]}),
    "data detail": ("get", "core/dataset/data/detail?id={data}", None),
    "data update": ("put", "core/dataset/data/update", lambda i: {"dataId": i["data"], "q": "changed"}),
    "data delete": ("delete", "core/dataset/data/delete?id={data}", None),
    "createTrainingUsage": ("post", "support/wallet/usage/createTrainingUsage", lambda i: {"datasetId": i["dataset"]}),
}


def call(client, name: str, ids: dict):
    method, path, body = ENDPOINTS[name]
    url = "/api/" + path.format(**ids)
    if method == "multipart":
        return client.post(url, body(ids), format="multipart")
    if body is None:
        return getattr(client, method)(url)
    return getattr(client, method)(url, body(ids), format="json")


def resources(team, dataset_name="D"):
    from datasets.services.collections import create_empty_collection
    from datasets.services.datasets import create_dataset

    dataset = create_dataset(team_id=team.pk, name=dataset_name, type="dataset")
    collection = create_empty_collection(team_id=team.pk, dataset_id=dataset.pk, name="C", type="virtual")
    folder = create_empty_collection(team_id=team.pk, dataset_id=dataset.pk, name="F", type="folder")
    insert_data(collection=collection, items=[NewData(q="their secret")])
    return {
        "dataset": dataset.pk, "collection": collection.pk, "folder": folder.pk,
        "data": Data.objects.get(collection=collection).pk,
        "bill": TrainingBill.objects.create(team=team, dataset=dataset).pk,
    }


def snapshot():
    return (
        sorted(Dataset.objects.values_list("pk", "name")),
        sorted(Collection.objects.values_list("pk", "name", "parent_id")),
        sorted(Data.objects.values_list("pk", "q")),
    )


@pytest.mark.parametrize("name", ENDPOINTS)
def test_an_app_key_is_refused(client_for, app_key, team, name):
    ids = resources(team)
    ids.update(own_dataset=ids["dataset"], own_collection=ids["collection"])
    before = snapshot()
    response = call(client_for(app_key), name, ids)
    assert response.status_code == 403
    body = response.json()
    assert (body["code"], body["statusText"]) == (403, "unAuthorization")
    assert "app key" in body["message"]
    assert snapshot() == before


@pytest.mark.parametrize("name", ENDPOINTS)
def test_another_teams_ids_are_not_found_like_unknown_ids(api, team, other_team, name):
    mine = resources(team, "Mine")
    theirs = resources(other_team, "Theirs")
    own = {"own_dataset": mine["dataset"], "own_collection": mine["collection"]}
    before = snapshot()
    foreign = call(api, name, {**theirs, **own})
    assert foreign.status_code == 404, foreign.content
    assert snapshot() == before
    unknown = call(api, name, {**{k: UNKNOWN for k in theirs}, **own})
    assert unknown.status_code == 404
    assert foreign.json() == unknown.json()
    assert "their secret" not in foreign.content.decode()
