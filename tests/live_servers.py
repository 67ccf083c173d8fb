"""Live server processes for end-to-end tests: `uvicorn config.asgi:application` (and, like
`make run`, a `db_worker` beside it) on the test database, its models at the fake provider.

The session's shared server is the `live_server_url` fixture (tests/conftest.py); a test that
needs its own command line or several workers uses `uvicorn_server` directly."""

import json
import os
import socket
import subprocess
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote, urlencode

import pytest
import requests

ROOT = Path(__file__).resolve().parent.parent


def database_url(settings_dict: dict) -> str:
    """A DATABASE_URL (as django-environ reads it) for the database `settings_dict` describes."""
    if settings_dict["ENGINE"] == "django.db.backends.sqlite3":
        return f"sqlite:///{Path(settings_dict['NAME']).resolve()}"
    # Query parameters become OPTIONS again (e.g. pgserver's `host=/socket/dir`).
    options = {k: v for k, v in (settings_dict.get("OPTIONS") or {}).items() if isinstance(v, (str, int))}
    host, port = settings_dict.get("HOST") or "", settings_dict.get("PORT") or ""
    if host.startswith("/"):  # a unix-socket directory cannot go in the URL's host part
        options["host"], host = host, ""
        if port:
            options["port"], port = port, ""
    user = quote(settings_dict.get("USER") or "", safe="")
    password = quote(settings_dict.get("PASSWORD") or "", safe="")
    netloc = f"{user}:{password}@{host}" + (f":{port}" if port else "")
    query = f"?{urlencode(options)}" if options else ""
    return f"postgresql://{netloc}/{quote(settings_dict['NAME'], safe='')}{query}"


def provider_models_json(provider) -> str:
    """AI_MODELS declaring `fake-llm`, `fake-embedding` (64 dimensions) and `fake-rerank` at `provider`."""
    common = {"baseUrl": provider.base_url, "apiKey": provider.api_key}
    return json.dumps(
        [
            {"name": "fake-llm", "type": "llm", "maxContext": 16000, "maxResponse": 4000, **common},
            {"name": "fake-embedding", "type": "embedding", "maxContext": 8000, "dimensions": 64, **common},
            {"name": "fake-rerank", "type": "rerank", "timeout": 10, **common},
        ]
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Server:
    def __init__(self, url: str, log_path: Path, worker_log_path: Path | None = None):
        self.url, self.log_path, self.worker_log_path = url, log_path, worker_log_path

    def log(self, tail: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]

    def worker_log(self, tail: int = 6000) -> str:
        """The `db_worker`'s output ('' without a worker)."""
        if self.worker_log_path is None:
            return ""
        return self.worker_log_path.read_text(errors="replace")[-tail:]


@contextmanager
def uvicorn_server(
    provider,
    log_dir: Path,
    *,
    command: list[str] | None = None,
    workers: int = 1,
    with_worker: bool = False,
    env: dict | None = None,
):
    """A uvicorn server on the test database, models at ``provider``, no rate limit; with
    ``with_worker``, a `manage.py db_worker` beside it. ``command`` (with its own --port)
    replaces the default server command line."""
    from django.db import connection

    if command is None:
        port = free_port()
        command = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                   "--port", str(port), "--lifespan", "off", "--workers", str(workers)]
    else:
        port = int(command[command.index("--port") + 1])
    full_env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "config.settings",
        "DATABASE_URL": database_url(connection.settings_dict),
        "CONN_MAX_AGE": "0",  # no idle connection may outlive a request (the test db is dropped)
        "AI_MODELS": provider_models_json(provider),
        "AI_MODELS_FILE": "",
        "DEFAULT_LLM_MODEL": "fake-llm",
        "API_KEY_RATE": "",
        **(env or {}),
    }
    log_path = log_dir / f"uvicorn-{port}.log"
    processes = []
    try:
        # Files, not pipes: a full pipe would block the process.
        with open(log_path, "wb") as log:
            processes.append(subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT))
        worker_log_path = log_dir / f"worker-{port}.log" if with_worker else None
        if with_worker:  # as `make run`: files and links are read and chunks embedded there
            worker = [sys.executable, "manage.py", "db_worker", "--interval", "0.2", "--no-startup-delay", "--no-reload"]
            with open(worker_log_path, "wb") as log:
                processes.append(subprocess.Popen(worker, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT))
        url = f"http://127.0.0.1:{port}"
        wait_until_serving(url, processes[0], log_path)
        yield Server(url, log_path, worker_log_path)
    finally:
        for process in reversed(processes):
            process.terminate()
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_until_serving(url: str, process: subprocess.Popen, log_path: Path, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            break
        try:
            if requests.get(f"{url}/api/schema/", timeout=2).status_code == 200:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    log = log_path.read_text(errors="replace")[-4000:]
    pytest.fail(f"the live server did not start (exit code {process.poll()}); its log:\n{log}")
