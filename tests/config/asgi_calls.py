"""Calling the ASGI applications of config/asgi.py in process (httpx's ASGI transport) and
comparing two answers: the lean path's against Django's full handler's."""

import json

import httpx
from asgiref.sync import async_to_sync

import config.asgi

URL = "/api/v1/chat/completions"
# Headers whose value legitimately differs between two calls (ids and times are in the body).
VARYING = {"content-length"}


class Reply:
    def __init__(self, response: httpx.Response):
        self.status = response.status_code
        self.headers = {name.lower(): value for name, value in response.headers.multi_items()}
        self.header_names = sorted(name.lower() for name, _ in response.headers.multi_items())
        self.text = response.text

    def json(self):
        return json.loads(self.text)


def call(app, method="POST", path=URL, *, key=None, body=None, raw=None, chunked=False, headers=None) -> Reply:
    async def run():
        sent = {"Content-Type": "application/json", **(headers or {})}
        if key is not None:
            sent["Authorization"] = key.header
        content = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
        if chunked:
            data = content

            async def pieces():
                yield data[: len(data) // 2]
                yield data[len(data) // 2 :]

            content = pieces()
        transport = httpx.ASGITransport(app=app, client=("127.0.0.1", 40000))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
            return Reply(await client.request(method, path, content=content, headers=sent))

    return async_to_sync(run)()


def lean(**kwargs) -> Reply:
    return call(config.asgi.application, **kwargs)


def full(**kwargs) -> Reply:
    return call(config.asgi.full_application, **kwargs)


def assert_same(a: Reply, b: Reply, *, same_body=True, varying=frozenset()):
    assert a.status == b.status
    assert a.header_names == b.header_names
    skip = VARYING | varying
    assert {k: v for k, v in a.headers.items() if k not in skip} == {
        k: v for k, v in b.headers.items() if k not in skip
    }
    if same_body:
        assert a.json() == b.json()
