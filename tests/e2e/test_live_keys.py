"""Against a live HTTP server, with `requests`: what a client program sees."""

import requests


def test_a_client_manages_datasets_over_http(live_server, global_key, app_key):
    base = f"{live_server.url}/api"
    headers = {"Authorization": global_key.header}
    created = requests.post(f"{base}/core/dataset/create", json={"name": "Docs"}, headers=headers, timeout=10)
    assert created.status_code == 200
    dataset_id = created.json()["data"]

    listed = requests.post(f"{base}/core/dataset/list", json={}, headers=headers, timeout=10).json()
    assert [d["_id"] for d in listed["data"]] == [dataset_id]
    detail = requests.get(f"{base}/core/dataset/detail", params={"id": dataset_id}, headers=headers, timeout=10)
    assert detail.json()["data"]["name"] == "Docs"

    refused = requests.post(f"{base}/core/dataset/list", json={}, headers={"Authorization": app_key.header}, timeout=10)
    assert refused.status_code == 403

    anonymous = requests.post(f"{base}/core/dataset/list", json={}, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.json()["statusText"] == "unAuthorization"

    deleted = requests.delete(f"{base}/core/dataset/delete", params={"id": dataset_id}, headers=headers, timeout=10)
    assert deleted.json() == {"code": 200, "statusText": "", "message": "", "data": None}
