"""PostgreSQL restarted under a live server with two workers: every pooled connection dies,
and no request may fail because of it (Django gives psycopg's pool its `check`, so a dead
connection is replaced when borrowed). And the training worker outlives an outage."""

import time

from concurrent.futures import ThreadPoolExecutor

import pytest
import requests
from django.db import connection

from tests.live_servers import uvicorn_server
from tests.postgres_control import postgres_outage, require_controllable_postgres, restart_postgres

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_no_request_fails_after_postgres_restarts(_fake_provider_server, global_key, app_key, tmp_path):
    require_controllable_postgres(connection)
    with uvicorn_server(_fake_provider_server, tmp_path, workers=2) as server:
        api = f"{server.url}/api"

        def list_datasets():
            return requests.post(
                f"{api}/core/dataset/list", json={}, headers={"Authorization": global_key.header}, timeout=30
            )

        def chat(n):
            return requests.post(
                f"{api}/v1/chat/completions",
                json={"chatId": "restart", "messages": [{"role": "user", "content": f"question {n}"}]},
                headers={"Authorization": app_key.header},
                timeout=30,
            )

        # Fill both workers' pools: concurrent requests each borrow a connection of their own,
        # and the pools keep them — all of them dead once PostgreSQL restarts.
        with ThreadPoolExecutor(max_workers=16) as pool:
            for burst in range(3):
                assert set(pool.map(lambda n: chat(n).status_code, range(burst * 16, burst * 16 + 16))) == {200}
                assert set(pool.map(lambda n: list_datasets().status_code, range(16))) == {200}

        restart_postgres()
        connection.close()  # this process's own connection died too

        statuses = [list_datasets().status_code for _ in range(40)]
        statuses += [chat(n).status_code for n in range(100, 160)]
        errors = [status for status in statuses if status != 200]
        assert errors == [], f"{len(errors)} of {len(statuses)} requests failed after the restart:\n{server.log()}"
        records = requests.post(
            f"{api}/core/chat/getPaginationRecords",
            json={"appId": app_key.row.app_id, "chatId": "restart", "pageSize": 100},
            headers={"Authorization": app_key.header},
            timeout=30,
        ).json()["data"]
    assert records["total"] == 2 * (48 + 60)  # every question and answer stored


def test_the_training_worker_outlives_a_database_outage(_fake_provider_server, global_key, tmp_path):
    """With no server for a few seconds the worker's polls fail (its pool gives up after
    DB_POOL_TIMEOUT): django-tasks' own worker exits on that error, and nothing would train any
    more. Ours (datasets/management/commands/db_worker.py) starts again once the server is back."""
    require_controllable_postgres(connection)
    env = {"DB_POOL_TIMEOUT": "1"}
    with uvicorn_server(_fake_provider_server, tmp_path, with_worker=True, env=env) as server:
        postgres_outage(seconds=4)
        connection.close()  # this process's own connection died too
        headers = {"Authorization": global_key.header}
        api = f"{server.url}/api/core/dataset"
        dataset = requests.post(f"{api}/create", json={"name": "after the outage"}, headers=headers, timeout=30)
        collection = requests.post(
            f"{api}/collection/create/text", headers=headers, timeout=30,
            json={"datasetId": dataset.json()["data"], "name": "notes", "text": "Trained once the server is back."},
        ).json()["data"]["collectionId"]
        deadline = time.monotonic() + 90  # a deadline for the worker, not a timing assertion
        while True:
            item = requests.get(f"{api}/collection/detail?id={collection}", headers=headers, timeout=30).json()["data"]
            if item["trainingAmount"] == 0:
                break
            assert time.monotonic() < deadline, f"nothing trained after the outage: {item}\n{server.worker_log()}"
            time.sleep(0.25)
        assert "database connection lost" in server.worker_log()


def test_no_request_fails_on_connections_the_server_ended_a_moment_ago(_fake_provider_server, app_key, global_key, tmp_path):
    """Both pools lend a connection back from a request less than 0.5 s ago without the
    round-trip test (config/postgres/liveness.py). When the server has ended it in the meantime
    — here every backend of the test database terminated right after the requests — the
    connection must still be tested and replaced, not lent dead."""
    require_controllable_postgres(connection)
    one_connection = {"DB_POOL_MIN_SIZE": "1", "DB_POOL_MAX_SIZE": "1"}  # the one just used is lent next
    with uvicorn_server(_fake_provider_server, tmp_path, env=one_connection) as server:
        api = f"{server.url}/api"
        headers = {"global": {"Authorization": global_key.header}, "app": {"Authorization": app_key.header}}

        def list_datasets():
            return requests.post(f"{api}/core/dataset/list", json={}, headers=headers["global"], timeout=30)

        def chat(n):
            return requests.post(
                f"{api}/v1/chat/completions", headers=headers["app"], timeout=30,
                json={"chatId": "ended", "messages": [{"role": "user", "content": f"question {n}"}]},
            )

        statuses = []
        for n in range(5):
            assert (list_datasets().status_code, chat(n).status_code) == (200, 200)
            with connection.cursor() as cursor:  # wait until each is gone: its FATAL is on the socket
                cursor.execute(
                    "SELECT count(*) FROM pg_stat_activity, pg_terminate_backend(pid, 5000) AS ended"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid() AND ended"
                )
                assert cursor.fetchone()[0] >= 2  # at least the two pools' connections
            statuses += [list_datasets().status_code, chat(100 + n).status_code]
        assert statuses == [200] * 10, server.log()
