"""The LiteLLM proxy as a peer: installed into its own venv, configured as a bare relay.

    venv = ensure_venv(ROOT / ".bench-venvs" / "litellm")   # pip install on first use
    argv, env = command(venv, folder, port=..., provider_url=..., provider_key=..., model=...)

Configured to do as little as LiteLLM allows: one model routed to the given OpenAI-compatible
provider, no database (DATABASE_URL removed from its environment), no success/failure
callbacks, no spend or error logs, message logging off, ERROR logs, telemetry off, the model
cost map read from the package (no network). A master key is set, so every request is
authenticated (a string compare: there is no key table without a database).
"""

import json
import os
import subprocess
import sys
from pathlib import Path

# `litellm[proxy]` is what the LiteLLM docs install for the proxy. httptools: uvicorn then
# parses HTTP with it, as it does for our server (litellm's CLI already picks uvloop), so the
# two servers differ in the application, not in the HTTP parser.
PACKAGES = ("litellm[proxy]", "httptools")
MASTER_KEY = "sk-bench-peer"

# Environment variables passed on; everything else (DATABASE_URL above all) stays out.
_KEEP = ("PATH", "HOME", "LANG", "LC_ALL", "TMPDIR", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL")


def ensure_venv(venv: Path, *, python: str = sys.executable, spec: str | None = None) -> Path:
    """The venv with the proxy installed; created (from PyPI) when it has no `litellm` yet."""
    if not (venv / "bin" / "litellm").exists():
        print(f"installing the LiteLLM proxy into {venv} (once) ...", flush=True)
        subprocess.run([python, "-m", "venv", str(venv)], check=True)
        pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q"]
        subprocess.run([*pip, "--upgrade", "pip"], check=True)
        subprocess.run([*pip, *(spec.split() if spec else PACKAGES)], check=True)
    return venv


def version(venv: Path) -> str:
    out = subprocess.run(
        [str(venv / "bin" / "python"), "-c", "import importlib.metadata as m; print(m.version('litellm'))"],
        capture_output=True, text=True,
    )
    return out.stdout.strip() or "?"


def command(venv: Path, folder: Path, *, port: int, provider_url: str, provider_key: str, model: str,
            workers: int = 1) -> tuple[list[str], dict]:
    """argv and environment that start the proxy on 127.0.0.1:port; the config goes in folder."""
    config = folder / "litellm.yaml"
    # YAML is a superset of JSON: no YAML library needed here.
    config.write_text(json.dumps({
        "model_list": [{
            "model_name": model,
            "litellm_params": {"model": f"openai/{model}", "api_base": provider_url, "api_key": provider_key},
        }],
        "litellm_settings": {
            "callbacks": [], "success_callback": [], "failure_callback": [],
            "turn_off_message_logging": True, "set_verbose": False, "telemetry": False,
        },
        "general_settings": {
            "master_key": MASTER_KEY, "disable_spend_logs": True, "disable_error_logs": True,
        },
    }, indent=2))
    env = {k: v for k, v in os.environ.items() if k in _KEEP}
    env.update({
        "PYTHONUNBUFFERED": "1",
        "LITELLM_LOG": "ERROR",
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    })
    argv = [
        str(venv / "bin" / "litellm"), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
        "--num_workers", str(workers), "--telemetry", "False",
    ]
    return argv, env
