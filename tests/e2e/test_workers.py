"""The production command with several worker processes (`manage.py serve --workers 2`, as
`make serve` runs it): a key's rate limit holds in total across the processes, and a revoked
key is refused by every process at once — with the default for several workers (no CACHE_URL:
counters in the database) and with Redis (CACHE_URL=redis://…, a redis-server started here).

Each HTTP connection is kept open and pinned to the worker process that accepted it: the test
finds that process through /proc (the process holding the connection's socket), so it knows it
is talking to both workers rather than hoping the kernel spread the requests."""

import http.client
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from keys import services
from keys.models import RateWindow
from tests.live_servers import free_port, uvicorn_server
from tests.redis_server import redis_server

pytestmark = pytest.mark.usefixtures("transactional_db")

LIMIT = 10


class Pinned:
    """One kept-alive HTTP connection and the server process that holds its other end."""

    def __init__(self, port: int):
        self.connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        self.connection.connect()
        self.local_port = self.connection.sock.getsockname()[1]
        self.server_port = port
        self.pid: int | None = None

    def post(self, path: str, header: str | None, body: dict | None = None) -> int:
        headers = {"Content-Type": "application/json"} | ({"Authorization": header} if header else {})
        self.connection.request("POST", path, body=json.dumps(body or {}), headers=headers)
        response = self.connection.getresponse()
        response.read()
        return response.status

    def close(self) -> None:
        self.connection.close()


def _socket_inode(local_port: int, server_port: int) -> str | None:
    """The inode of the server side of the connection 127.0.0.1:server_port ← :local_port."""
    wanted_local, wanted_remote = f"0100007F:{server_port:04X}", f"0100007F:{local_port:04X}"
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[1] == wanted_local and fields[2] == wanted_remote:
            return fields[9]
    return None


def _pid_holding(inode: str) -> int | None:
    target = f"socket:[{inode}]"
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            for fd in (entry / "fd").iterdir():
                if os.readlink(fd) == target:
                    return int(entry.name)
        except OSError:  # a process that ended, or one we may not read
            continue
    return None


def pin_connections(port: int, *, processes: int = 2, rounds: int = 30) -> dict[int, list[Pinned]]:
    """Open connections, a few at once per round (one keyless request each — a 401 that counts
    against no key — so each is accepted), until ``processes`` worker processes hold some;
    grouped by the process that serves them. (One process may accept a whole burst: the
    kernel wakes every waiting process and the first to accept takes what is queued.)"""
    by_pid: dict[int, list[Pinned]] = {}
    for _ in range(rounds):
        connections = [Pinned(port) for _ in range(6)]
        with ThreadPoolExecutor(max_workers=len(connections)) as pool:
            assert set(pool.map(lambda c: c.post("/api/core/dataset/list", None), connections)) == {401}
        for pinned in connections:
            inode = _socket_inode(pinned.local_port, port)
            pinned.pid = _pid_holding(inode) if inode else None
            assert pinned.pid is not None, "no process holds the server side of a live connection"
            by_pid.setdefault(pinned.pid, []).append(pinned)
        if len(by_pid) >= processes:
            break
    return by_pid


@pytest.fixture(params=["database", "redis"])
def counters(request, tmp_path):
    """Where the server counts: "database" (serve's default for several workers: CACHE_URL
    unset) or a Redis URL."""
    if request.param == "database":
        yield "database"
    else:
        with redis_server(tmp_path) as url:
            yield url


@pytest.fixture
def workers_server(_fake_provider_server, tmp_path, counters, monkeypatch):
    port = free_port()
    command = [sys.executable, "manage.py", "serve", "--host", "127.0.0.1", "--port", str(port), "--workers", "2"]
    # Per day: a test cannot straddle a window's end (the server's clock is real), bar midnight.
    env = {"API_KEY_RATE": f"{LIMIT}/day"}
    if counters == "database":
        monkeypatch.delenv("CACHE_URL", raising=False)  # the default of a multi-process run
    else:
        env["CACHE_URL"] = counters
    with uvicorn_server(_fake_provider_server, tmp_path, command=command, env=env) as server:
        yield server, port


def counted(counters: str, key_id: int) -> int:
    """The key's count in this window, read where the server keeps it."""
    if counters == "database":
        return RateWindow.objects.get(key_id=key_id).count
    import redis

    client = redis.Redis.from_url(counters)
    [name] = client.keys(f"*throttle:api_key:{key_id}:*")
    return int(client.get(name))


def test_the_rate_limit_holds_in_total_across_worker_processes(workers_server, counters, make_key, team):
    server, port = workers_server
    key = make_key(team)
    by_pid = pin_connections(port)
    assert len(by_pid) == 2, f"expected two worker processes, connections went to {sorted(by_pid)}:\n{server.log()}"
    first, second = (conns[0] for conns in by_pid.values())

    # Half the limit through each process: all allowed…
    statuses = [first.post("/api/core/dataset/list", key.header) for _ in range(LIMIT // 2)]
    statuses += [second.post("/api/core/dataset/list", key.header) for _ in range(LIMIT - LIMIT // 2)]
    assert statuses == [200] * LIMIT
    # …and the next request is refused by either: the processes count together.
    assert first.post("/api/core/dataset/list", key.header) == 429
    assert second.post("/api/core/dataset/list", key.header) == 429
    # Counted where the configuration says (and only there).
    assert counted(counters, key.row.pk) == LIMIT + 2
    assert RateWindow.objects.filter(key_id=key.row.pk).exists() is (counters == "database")


def test_concurrent_requests_across_processes_get_exactly_the_limit(workers_server, make_key, team):
    server, port = workers_server
    by_pid = pin_connections(port)
    assert len(by_pid) == 2, server.log()
    connections = [conn for conns in by_pid.values() for conn in conns]
    key = make_key(team)
    # Three times the limit at once, spread over every connection of both processes.
    jobs = [connections[n % len(connections)] for n in range(3 * LIMIT)]
    by_connection: dict[Pinned, list[int]] = {}
    with ThreadPoolExecutor(max_workers=len(connections)) as pool:

        def run(conn: Pinned) -> list[int]:
            return [conn.post("/api/core/dataset/list", key.header) for _ in range(jobs.count(conn))]

        for conn, statuses in zip(connections, pool.map(run, connections)):
            by_connection[conn] = statuses
    statuses = [status for batch in by_connection.values() for status in batch]
    assert sorted(set(statuses)) == [200, 429]
    assert statuses.count(200) == LIMIT, f"{statuses.count(200)} allowed of {len(statuses)}, limit {LIMIT}"
    # Both processes answered some of them.
    assert {conn.pid for conn, batch in by_connection.items() if batch} == set(by_pid)


def test_a_revoked_key_is_refused_by_every_process_at_once(workers_server, make_key, team):
    server, port = workers_server
    by_pid = pin_connections(port)
    assert len(by_pid) == 2, server.log()
    key = make_key(team)
    pinned = [conns[0] for conns in by_pid.values()]
    assert [conn.post("/api/core/dataset/list", key.header) for conn in pinned] == [200, 200]
    services.revoke_api_key(key=key.row)
    # The very next request on each process is refused: nothing about the key is cached.
    assert [conn.post("/api/core/dataset/list", key.header) for conn in pinned] == [401, 401]


CHAT = "/api/v1/chat/completions"


def chat(conn: Pinned, key) -> int:
    return conn.post(CHAT, key.header, {"messages": [{"role": "user", "content": "hello"}]})


def test_chat_completions_share_the_limit_and_see_a_revocation_in_every_process(workers_server, make_key, team, app):
    """The chat endpoint has its own lean path: the same guarantees there."""
    server, port = workers_server
    by_pid = pin_connections(port)
    assert len(by_pid) == 2, server.log()
    first, second = (conns[0] for conns in by_pid.values())
    limited = make_key(team, app)
    statuses = [chat(first, limited) for _ in range(LIMIT // 2)] + [chat(second, limited) for _ in range(LIMIT - LIMIT // 2)]
    assert statuses == [200] * LIMIT, server.log()
    assert [chat(first, limited), chat(second, limited)] == [429, 429]

    revoked = make_key(team, app)
    assert [chat(first, revoked), chat(second, revoked)] == [200, 200]
    services.revoke_api_key(key=revoked.row)
    assert [chat(first, revoked), chat(second, revoked)] == [401, 401]
