"""How the server is run: `make run`'s uvicorn command trusts no proxy unless told
(FORWARDED_ALLOW_IPS), and the HTTPS settings come from the environment."""

import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from chat.models import Chat
from tests.live_servers import free_port
from tests.live_servers import uvicorn_server

ROOT = Path(__file__).resolve().parent.parent.parent


def make_run_server_command(port: int, **make_vars: str) -> list[str]:
    """The uvicorn command `make run` would start (read with `make -n`), on ``port``."""
    assignments = [f"{name}={value}" for name, value in make_vars.items()]
    printed = subprocess.run(
        ["make", "-n", "run", f"PORT={port}", f"PY={sys.executable}", *assignments],
        cwd=ROOT, capture_output=True, text=True, check=True,
    ).stdout.replace("\\\n", " ")
    # The recipe's last shell line starts the worker, then the server: take the server's part.
    line = next(line for line in printed.splitlines() if "-m uvicorn" in line)
    return shlex.split(line[line.rindex(";") + 1 :] if ";" in line else line)


@pytest.mark.usefixtures("transactional_db")
@pytest.mark.parametrize(
    "make_vars, stored_ip",
    [({}, "127.0.0.1"), ({"FORWARDED_ALLOW_IPS": "127.0.0.1"}, "203.0.113.7")],
)
def test_x_forwarded_for_is_believed_only_from_configured_proxies(
    app_key, _fake_provider_server, tmp_path, make_vars, stored_ip
):
    command = make_run_server_command(free_port(), **make_vars)
    assert "--forwarded-allow-ips" in command
    os.environ.pop("FORWARDED_ALLOW_IPS", None)  # only what the command says counts
    with uvicorn_server(_fake_provider_server, tmp_path, command=command) as server:
        answer = requests.post(
            f"{server.url}/api/v1/chat/completions",
            json={"chatId": "proxy", "messages": [{"role": "user", "content": "hi"}]},
            headers={"Authorization": app_key.header, "X-Forwarded-For": "203.0.113.7"},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text + server.log()
    assert Chat.objects.get(chat_id="proxy").metadata["originIp"] == stored_ip


def settings_under(env: dict) -> dict:
    code = (
        "import django, json; django.setup(); from django.conf import settings as s; "
        "print(json.dumps([s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_HSTS_SECONDS, "
        "s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_SSL_REDIRECT, s.SECURE_PROXY_SSL_HEADER]))"
    )
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SECURE_", "SESSION_", "CSRF_"))}
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
        env={**base, "DJANGO_SETTINGS_MODULE": "config.settings", **env},
    )
    assert result.returncode == 0, result.stderr
    import json

    return json.loads(result.stdout)


def test_https_settings_come_from_the_environment():
    assert settings_under({}) == [False, False, 0, False, False, None]
    assert settings_under(
        {
            "SESSION_COOKIE_SECURE": "true", "CSRF_COOKIE_SECURE": "true", "SECURE_HSTS_SECONDS": "31536000",
            "SECURE_HSTS_INCLUDE_SUBDOMAINS": "true", "SECURE_SSL_REDIRECT": "true",
            "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto,https",
        }
    ) == [True, True, 31536000, True, True, ["HTTP_X_FORWARDED_PROTO", "https"]]


def test_make_run_prints_the_admin_url_and_how_to_make_a_login():
    printed = subprocess.run(
        ["make", "-n", "run", "PORT=8123"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout
    assert "http://127.0.0.1:8123/admin/" in printed
    assert "manage.py createsuperuser" in printed


def test_make_run_starts_a_training_worker_beside_the_server():
    printed = subprocess.run(
        ["make", "-n", "run", "PORT=8123"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.replace("\\\n", " ")
    recipe = next(line for line in printed.splitlines() if "-m uvicorn" in line)
    # The workers (TRAINING_WORKERS, 2 by default) are started in the background first, and killed when
    # the server exits.
    assert recipe.index("manage.py db_worker") < recipe.index("-m uvicorn")
    assert "for i in $(seq 2)" in recipe
    assert "trap 'kill $workers" in recipe
