"""One POST through an ASGI application in process (no socket), for the in-process benchmarks
(bench/turn_counts.py, bench/search_overhead.py)."""

import asyncio


def post_scope(path: str, key: str, body: bytes) -> dict:
    """The ASGI scope of `POST path` with a JSON body and a bearer key, as uvicorn sends it."""
    return {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1",
        "method": "POST", "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1:8000"), (b"authorization", f"Bearer {key}".encode()),
                    (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }


async def post(app, path: str, key: str, body: bytes) -> bytes:
    """One request through the ASGI app; its body (raises unless 200)."""
    sent = False
    never = asyncio.get_running_loop().create_future()
    status, parts = 0, []

    async def receive():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await never  # no disconnect: Django's listener waits here until the response is done
        return {"type": "http.disconnect"}

    async def send(message):
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif message["type"] == "http.response.body":
            parts.append(message.get("body", b""))

    await app(post_scope(path, key, body), receive, send)
    if status != 200:
        raise RuntimeError(f"HTTP {status}: {b''.join(parts)[:300]!r}")
    return b"".join(parts)
