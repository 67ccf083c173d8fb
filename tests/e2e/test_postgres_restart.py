"""PostgreSQL restarted under a live server: the pool's connections all die, and no request
may fail because of it (psycopg pool's `check` replaces a dead connection when borrowed)."""

from concurrent.futures import ThreadPoolExecutor

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

    # Fill the server's pool with connections: requests at once, so it holds a dozen; after the
    # restart each is dead (psycopg's own check would wait 1 s, 2 s, 4 s … between them).
    with ThreadPoolExecutor(max_workers=12) as pool:
        first = list(pool.map(lambda n: chat(n) if n % 2 else list_datasets(), range(20)))
    assert [r.status_code for r in first] == [200] * 20

    restart_postgres()
    connection.close()  # this process's own connection died too

    responses = [list_datasets() for _ in range(40)] + [chat(n) for n in range(20, 80)]
    errors = [(r.status_code, r.text[:300]) for r in responses if r.status_code != 200]
    assert errors == [], f"{len(errors)} of {len(responses)} requests failed after the restart: {errors}"
    answers = requests.post(
        f"{api}/core/chat/getPaginationRecords",
        json={"appId": app_key.row.app_id, "chatId": "restart", "pageSize": 100},
        headers={"Authorization": app_key.header},
        timeout=30,
    ).json()["data"]
    assert answers["total"] == 2 * (10 + 60)  # every question and answer stored
