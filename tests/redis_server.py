"""A throwaway `redis-server` (Debian's package, which .ci/run installs) for the tests of rate
limits counted in Redis: its own port, no persistence, stopped afterwards."""

import shutil
import socket
import subprocess
import time
from contextlib import contextmanager

import pytest

from tests.live_servers import free_port


def require_redis_server() -> str:
    """The redis-server binary, or a skip that says why (the test is then visibly not run)."""
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server is not installed (CI installs Debian's redis-server in .ci/run)")
    return binary


@contextmanager
def redis_server(log_dir):
    """Start redis-server on a free port; yields its URL (redis://127.0.0.1:PORT/0)."""
    binary = require_redis_server()
    port = free_port()
    log = open(log_dir / f"redis-{port}.log", "wb")
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "yes"],
        stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
                    sock.sendall(b"PING\r\n")
                    if sock.recv(16).startswith(b"+PONG"):
                        break
            except OSError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                log.flush()
                pytest.fail(f"redis-server did not start: {(log_dir / f'redis-{port}.log').read_text(errors='replace')[-2000:]}")
            time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
