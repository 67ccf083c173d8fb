"""Every error of every /api endpoint is the envelope with the true HTTP status."""

import pytest
from django.test.utils import override_settings
from rest_framework.test import APIClient


def test_unknown_api_path_is_404_envelope(api):
    response = api.post("/api/core/nothing/here", {}, format="json")
    assert response.status_code == 404
    assert response.json() == {
        "code": 404, "statusText": "notFound", "message": "No endpoint at /api/core/nothing/here.", "data": None
    }


def test_unknown_path_outside_api_is_a_normal_page(client, db):
    response = client.get("/nowhere")
    assert response.status_code == 404
    assert "text/html" in response["Content-Type"]


def test_bad_json_is_400(api):
    response = api.post("/api/core/dataset/create", data='{"name": ', content_type="application/json")
    assert response.status_code == 400
    body = response.json()
    assert (body["code"], body["statusText"]) == (400, "badRequest")
    assert "JSON" in body["message"]


def test_a_body_that_is_not_json_is_415(api):
    response = api.post("/api/core/dataset/create", data="name=x", content_type="application/x-www-form-urlencoded")
    assert response.status_code == 415
    assert response.json()["statusText"] == "unsupportedMediaType"


@override_settings(DATA_UPLOAD_MAX_MEMORY_SIZE=1000)
def test_a_body_over_the_limit_is_413(api):
    response = api.post("/api/core/dataset/create", {"name": "x", "intro": "y" * 5000}, format="json")
    assert response.status_code == 413
    assert response.json()["statusText"] == "requestTooLarge"


@pytest.mark.urls("tests.config.crash_urls")
def test_unexpected_exception_is_500_without_a_trace(api, caplog):
    client = api
    client.raise_request_exception = False
    response = client.post("/api/test/crash", {}, format="json")
    assert response.status_code == 500
    assert response.json() == {
        "code": 500, "statusText": "internalServerError", "message": "Internal server error.", "data": None
    }
    assert "secret internal detail" not in response.content.decode()
    assert "secret internal detail" in caplog.text  # the trace goes to the log


def test_schema_builds_without_warnings():
    from django.core.management import call_command

    call_command("spectacular", "--fail-on-warn", "--file", "/dev/null")


def test_schema_and_docs_are_served_offline(db):
    client = APIClient()
    schema = client.get("/api/schema/?format=json")
    assert schema.status_code == 200
    paths = schema.json()["paths"]
    assert {"/api/core/dataset/create", "/api/core/dataset/list", "/api/core/dataset/detail", "/api/core/dataset/delete"} <= paths.keys()
    docs = client.get("/api/docs/")
    assert docs.status_code == 200
    html = docs.content.decode()
    assert "swagger-ui" in html
    assert "cdn" not in html.lower()  # assets come from the sidecar package, not the network


# --- DEBUG on: API errors are still the envelope, never Django's HTML debug pages -------------

ENVELOPE_500 = {"code": 500, "statusText": "internalServerError", "message": "Internal server error.", "data": None}


@override_settings(DEBUG=True)
def test_with_debug_an_unknown_api_path_is_the_404_envelope(api):
    for method in ("get", "post", "delete"):
        response = getattr(api, method)("/api/core/nothing/here")
        assert response.status_code == 404
        assert response["Content-Type"] == "application/json"
        assert response.json()["statusText"] == "notFound"


@override_settings(DEBUG=True)
@pytest.mark.urls("tests.config.crash_urls")
@pytest.mark.parametrize("path", ["/api/test/crash", "/api/test/plain-crash", "/api/test/async-crash"])
def test_with_debug_a_crash_is_the_500_envelope_without_a_trace(api, caplog, path):
    api.raise_request_exception = False
    response = api.post(path, {}, format="json")
    assert response.status_code == 500
    assert response["Content-Type"] == "application/json"
    assert response.json() == ENVELOPE_500
    assert "secret internal detail" not in response.content.decode()
    assert "secret internal detail" in caplog.text


@pytest.mark.urls("tests.config.crash_urls")
def test_a_crash_in_an_async_view_is_the_500_envelope(db, caplog):
    from django.test import AsyncClient
    from asgiref.sync import async_to_sync

    client = AsyncClient(raise_request_exception=False)
    response = async_to_sync(client.post)("/api/test/async-crash", {}, content_type="application/json")
    assert response.status_code == 500
    assert response.json() == ENVELOPE_500


def test_an_authenticated_options_request_answers_the_envelope(api):
    response = api.options("/api/core/dataset/create")
    assert response.status_code == 200
    assert response.json() == {"code": 200, "statusText": "", "message": "", "data": None}
    assert "POST" in response["Allow"]


def test_an_anonymous_options_request_is_401(db):
    response = APIClient().options("/api/core/dataset/create")
    assert response.status_code == 401
    assert response.json()["statusText"] == "unAuthorization"


# --- the landing page --------------------------------------------------------------------------


def test_the_root_is_a_landing_page_linking_docs_and_admin(client, db):
    response = client.get("/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "FastGPT-compatible" in html
    assert 'href="/api/docs/"' in html and 'href="/admin/"' in html
    assert "createsuperuser" in html


def test_a_database_outage_is_a_503_to_retry_not_a_500(api, monkeypatch):
    """An OperationalError (server down or restarting, no pooled connection in time, a lock)
    is transient: 503 with Retry-After, the envelope naming it."""
    from django.db import OperationalError

    from datasets import selectors

    def down(**kwargs):
        raise OperationalError("couldn't get a connection after 10.00 sec")

    monkeypatch.setattr(selectors, "list_datasets", down)
    response = api.post("/api/core/dataset/list", {}, format="json")
    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert response.json()["statusText"] == "databaseUnavailable"
    assert "couldn't get a connection" not in response.content.decode()  # no internals shown


def test_a_database_outage_in_chat_is_a_503_with_the_openai_error(app_key, monkeypatch):
    from django.db import OperationalError

    from chat.completions import views
    from tests.chat.completion_calls import post

    def down(request):
        raise OperationalError("terminating connection due to administrator command")

    monkeypatch.setattr(views, "start_turn", down)
    answer = post({"messages": [{"role": "user", "content": "hi"}]}, key=app_key)
    assert answer.status_code == 503
    assert answer.headers["Retry-After"] == "5"
    assert answer.json()["error"]["type"] == "databaseUnavailable"
