"""Schemathesis over the whole OpenAPI schema against a live server: no 5xx, and no answer the
schema does not describe (status code, content type, body, headers).

Bounded and reproducible: a fixed number of examples per operation and a fixed seed, no
shrinking; each run takes well under a minute. Two passes: a global key over every operation
(dataset endpoints need one), and an app key over the chat operations (chat completions needs
an app, which random `appId`s never name).
"""

import subprocess
import sys

import pytest
import requests

pytestmark = pytest.mark.usefixtures("transactional_db")

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_schema_conformance",
        "response_headers_conformance",
    ]
)
EXAMPLES_PER_OPERATION = 20
SEED = 8


def run_schemathesis(url: str, key, folder, *extra: str) -> subprocess.CompletedProcess:
    schema = folder / "schema.json"
    schema.write_bytes(requests.get(f"{url}/api/schema/?format=json", timeout=10).content)
    command = [
        sys.executable, "-m", "schemathesis.cli", "run", str(schema),
        "--url", url,
        "--header", f"Authorization: {key.header}",
        "--checks", CHECKS,
        "--max-examples", str(EXAMPLES_PER_OPERATION),
        "--seed", str(SEED),
        "--phases", "examples,coverage,fuzzing",
        "--workers", "1",  # CPython 3.11 may fail compiling hypothesis code in threads
        "--request-timeout", "30",
        "--no-shrink",
        "--continue-on-failure",
        "--suppress-health-check", "all",
        "--warnings", "off",
        *extra,
    ]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, cwd=folder)


def assert_passed(result: subprocess.CompletedProcess) -> None:
    assert result.returncode == 0, result.stdout[-30000:] + result.stderr[-4000:]
    assert "generated" in result.stdout  # it did run test cases


def test_every_operation_holds_under_fuzzing_with_a_global_key(live_server_url, global_key, app, tmp_path):
    assert_passed(run_schemathesis(live_server_url, global_key, tmp_path))


def test_chat_operations_hold_under_fuzzing_with_an_app_key(live_server_url, app_key, tmp_path):
    result = run_schemathesis(live_server_url, app_key, tmp_path, "--include-path-regex", "/chat/|/ai/")
    assert_passed(result)
