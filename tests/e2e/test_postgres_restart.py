"""PostgreSQL restarted under a live server: the pool's connections all die, and no request
may fail because of it (psycopg pool's `check` replaces a dead connection when borrowed)."""

import pytest
import requests
from django.db import connection

from tests.postgres_control import require_controllable_postgres, restart_postgres

pytestmark = pytest.mark.usefixtures("transactional_db")


def test_no_request_fails_after_postgres_restarts(live_server_url, global_key, app_key):
    require_controllable_postgres(connection)
    api = f"{live_server_url}/api"

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

    # Fill the server's pool with connections (several at once, so more than one is opened).
    for n in range(10):
        assert list_datasets().status_code == 200
        assert chat(n).status_code == 200

    restart_postgres()
    connection.close()  # this process's own connection died too

    statuses = [list_datasets().status_code for _ in range(40)]
    statuses += [chat(n).status_code for n in range(10, 70)]
    errors = [status for status in statuses if status != 200]
    assert errors == [], f"{len(errors)} of {len(statuses)} requests failed after the restart"
    answers = requests.post(
        f"{api}/core/chat/getPaginationRecords",
        json={"appId": app_key.row.app_id, "chatId": "restart", "pageSize": 100},
        headers={"Authorization": app_key.header},
        timeout=30,
    ).json()["data"]
    assert answers["total"] == 140  # every question and answer stored
