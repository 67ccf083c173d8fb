"""Bearer authentication: every way a credential is accepted or refused."""

import logging

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext, override_settings
from django.utils import timezone
from rest_framework.test import APIClient

from keys import services
from keys.models import ApiKey
from keys.selectors import key_for_secret

LIST_URL = "/api/core/dataset/list"


@pytest.fixture
def client():
    return APIClient()


def post_with_header(client, header):
    extra = {"HTTP_AUTHORIZATION": header} if header is not None else {}
    return client.post(LIST_URL, {}, format="json", **extra)


def assert_error(response, http_status, body_code, status_text):
    assert response.status_code == http_status, response.content
    body = response.json()
    assert body["code"] == body_code
    assert body["statusText"] == status_text
    assert body["message"]
    assert body["data"] is None


def test_a_valid_global_key_is_accepted(client_for, global_key):
    response = client_for(global_key).post(LIST_URL, {}, format="json")
    assert response.status_code == 200
    assert response.json() == {"code": 200, "statusText": "", "message": "", "data": []}


@pytest.mark.parametrize("template", ["bearer {}", "BEARER {}", "Bearer   {}  ", "  Bearer {}"])
def test_scheme_word_is_case_insensitive_and_spaces_are_tolerated(client, global_key, template):
    response = post_with_header(client, template.format(global_key.plaintext))
    assert response.status_code == 200


def test_missing_header_is_401_unauthorization_with_www_authenticate(client, db):
    response = post_with_header(client, None)
    assert_error(response, 401, 403, "unAuthorization")
    assert response["WWW-Authenticate"].startswith("Bearer")


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer   ", "Token fastgpt-x", "Bearer a b"])
def test_malformed_header_is_401_unauthorization(client, db, header):
    response = post_with_header(client, header)
    assert_error(response, 401, 403, "unAuthorization")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_unknown_key_is_401_unauthapikey(client, global_key):
    response = post_with_header(client, "Bearer fastgpt-" + "x" * 48)
    assert_error(response, 401, 514, "unAuthApiKey")
    assert response["WWW-Authenticate"].startswith("Bearer")


def test_revoked_key_is_refused(client, global_key):
    services.revoke_api_key(key=global_key.row)
    response = post_with_header(client, global_key.header)
    assert_error(response, 401, 514, "unAuthApiKey")
    assert "revoked" in response.json()["message"]


def test_expired_key_is_refused_and_a_future_expiry_is_not(client, make_key, team, clock):
    from datetime import timedelta

    key = make_key(team, expires_at=clock.now + timedelta(hours=1))
    assert post_with_header(client, key.header).status_code == 200
    clock.advance(hours=1, seconds=1)
    response = post_with_header(client, key.header)
    assert_error(response, 401, 514, "unAuthApiKey")
    assert "expired" in response.json()["message"]


def test_key_at_its_usage_cap_is_402(client, make_key, team):
    key = make_key(team, max_usage_points=10)
    assert post_with_header(client, key.header).status_code == 200
    services.add_usage(key=key.row, points=10)
    assert_error(post_with_header(client, key.header), 402, 510, "insufficientQuota")


def test_unlimited_key_is_never_capped(client, make_key, team):
    key = make_key(team, max_usage_points=-1)
    services.add_usage(key=key.row, points=10**9)
    assert post_with_header(client, key.header).status_code == 200


@override_settings(API_KEY_RATE="3/minute")
def test_rate_limit_answers_429_with_retry_after(client, global_key, make_key, team, fixed_clock):
    for _ in range(3):
        assert post_with_header(client, global_key.header).status_code == 200
    response = post_with_header(client, global_key.header)
    assert_error(response, 429, 429, "tooManyRequests")
    assert 1 <= int(response["Retry-After"]) <= 60
    # The limit is per key: another key of the same team is unaffected.
    assert post_with_header(client, make_key(team).header).status_code == 200


@override_settings(API_KEY_RATE="")
def test_an_empty_rate_disables_the_limit(client, global_key):
    for _ in range(20):
        assert post_with_header(client, global_key.header).status_code == 200


def test_legacy_key_with_app_id_suffix_is_accepted(client, global_key, app):
    response = post_with_header(client, f"Bearer {global_key.plaintext}-{app.pk}")
    assert response.status_code == 200


def test_legacy_suffix_on_an_unknown_key_is_refused(client, db):
    response = post_with_header(client, "Bearer fastgpt-" + "y" * 48 + "-someapp")
    assert_error(response, 401, 514, "unAuthApiKey")


@override_settings(API_KEY_LAST_USED_RESOLUTION=60)
def test_last_used_is_written_at_most_once_per_resolution(client, global_key, clock):
    assert global_key.row.last_used_at is None
    post_with_header(client, global_key.header)
    first = ApiKey.objects.get(pk=global_key.row.pk).last_used_at
    assert first == clock.now

    clock.advance(seconds=30)
    with CaptureQueriesContext(connection) as queries:
        post_with_header(client, global_key.header)
    assert not any(q["sql"].lstrip().upper().startswith("UPDATE") for q in queries.captured_queries)
    assert ApiKey.objects.get(pk=global_key.row.pk).last_used_at == first

    clock.advance(seconds=31)
    post_with_header(client, global_key.header)
    assert ApiKey.objects.get(pk=global_key.row.pk).last_used_at == clock.now


def test_plaintext_is_never_stored(global_key, app_key):
    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM keys_apikey")
        rows = cursor.fetchall()
    stored = repr(rows)
    for key in (global_key, app_key):
        assert key.plaintext not in stored
        assert key.plaintext[len("fastgpt-"):] not in stored


def test_keys_do_not_reach_the_logs(client, global_key, caplog):
    caplog.set_level(logging.DEBUG)
    post_with_header(client, global_key.header)
    post_with_header(client, global_key.header + "x")
    assert global_key.plaintext not in caplog.text


def test_rotation_keeps_the_old_key_working_for_the_grace_then_refuses_it(client, global_key, clock):
    from datetime import timedelta

    new, plaintext = services.rotate_api_key(key=global_key.row, grace=timedelta(hours=24))
    assert post_with_header(client, f"Bearer {plaintext}").status_code == 200
    clock.advance(hours=23, minutes=59)
    assert post_with_header(client, global_key.header).status_code == 200
    clock.advance(minutes=2)
    assert_error(post_with_header(client, global_key.header), 401, 514, "unAuthApiKey")
    assert post_with_header(client, f"Bearer {plaintext}").status_code == 200


def test_rotation_now_refuses_the_old_key_at_once(client, global_key):
    from datetime import timedelta

    services.rotate_api_key(key=global_key.row, grace=timedelta(0))
    assert_error(post_with_header(client, global_key.header), 401, 514, "unAuthApiKey")


def test_rotation_carries_usage_and_scope_over(global_key, app_key):
    services.add_usage(key=app_key.row, points=7)
    app_key.row.refresh_from_db()
    new, _ = services.rotate_api_key(key=app_key.row)
    assert (new.team_id, new.app_id, new.usage_points) == (app_key.row.team_id, app_key.row.app_id, 7)


def test_a_revoked_key_cannot_be_rotated_or_revived(global_key):
    services.revoke_api_key(key=global_key.row)
    with pytest.raises(ValueError):
        services.rotate_api_key(key=global_key.row)
    revoked_at = global_key.row.revoked_at
    services.revoke_api_key(key=global_key.row)
    assert ApiKey.objects.get(pk=global_key.row.pk).revoked_at == revoked_at


def test_the_key_read_by_its_hash_is_the_orms_row(global_key):
    """key_for_secret reads in SQL; every field is what the ORM reads (aware times included)."""
    ApiKey.objects.filter(pk=global_key.row.pk).update(last_used_at=timezone.now(), max_usage_points=7)
    read = key_for_secret(key=global_key.plaintext)
    stored = ApiKey.objects.get(pk=global_key.row.pk)
    fields = [field.attname for field in ApiKey._meta.concrete_fields]
    assert [getattr(read, name) for name in fields] == [getattr(stored, name) for name in fields]
    assert read.last_used_at.tzinfo is not None and read._state.adding is False
    assert key_for_secret(key=global_key.plaintext + "x") is None
