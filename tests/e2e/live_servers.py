"""Starting a uvicorn server of one's own (beside the session's `live_server_url`) for tests
that need their own command line or several workers, and reading its log on failure."""

import os
import subprocess
import sys
from contextlib import contextmanager
from pathlib import Path

from django.db import connection

from tests.conftest import _free_port, _wait_until_serving, database_url, provider_models_json

ROOT = Path(__file__).resolve().parent.parent.parent


class Server:
    def __init__(self, url: str, log_path: Path):
        self.url, self.log_path = url, log_path

    def log(self, tail: int = 6000) -> str:
        return self.log_path.read_text(errors="replace")[-tail:]


@contextmanager
def uvicorn_server(provider, log_dir: Path, *, command: list[str] | None = None, workers: int = 1, env: dict | None = None):
    """A uvicorn server on the test database, models at ``provider``; ``command`` (with its
    own --port) replaces the default one."""
    port = _free_port()
    if command is None:
        command = [sys.executable, "-m", "uvicorn", "config.asgi:application", "--host", "127.0.0.1",
                   "--port", str(port), "--lifespan", "off", "--workers", str(workers)]
    else:
        port = int(command[command.index("--port") + 1])
    full_env = {
        **os.environ,
        "DATABASE_URL": database_url(connection.settings_dict),
        "AI_MODELS": provider_models_json(provider),
        "AI_MODELS_FILE": "",
        "DEFAULT_LLM_MODEL": "fake-llm",
        "API_KEY_RATE": "",
        **(env or {}),
    }
    log_path = log_dir / f"uvicorn-{port}.log"
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_until_serving(url, process, log_path)
        yield Server(url, log_path)
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
