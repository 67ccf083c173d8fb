"""Calling the chat-completions view in-process through Django's ASGI test client, or on an
event loop of its own as uvicorn runs it."""

import asyncio
import json
import threading

from asgiref.sync import async_to_sync
from django.test import AsyncClient

URL = "/api/v1/chat/completions"


class Answer:
    """A finished response: status, headers, and the body (JSON, or the SSE text)."""

    def __init__(self, status, headers, text):
        self.status_code, self.headers, self.text = status, headers, text

    def json(self):
        return json.loads(self.text)

    def events(self) -> list[tuple[str | None, str]]:
        """SSE messages as (event name or None, data); comments are kept as ("comment", text)."""
        found = []
        for block in self.text.split("\n\n"):
            if not block.strip():
                continue
            name, data = None, []
            for line in block.split("\n"):
                if line.startswith(":"):
                    found.append(("comment", line[1:].strip()))
                elif line.startswith("event:"):
                    name = line[6:].strip()
                elif line.startswith("data:"):
                    data.append(line[5:].strip())
            if data:
                found.append((name, "\n".join(data)))
        return found


def post(body, *, key=None, raw: bytes | None = None, method="post", **headers) -> Answer:
    """POST ``body`` as JSON (or ``raw`` bytes) with ``key``'s Bearer header, read it whole."""

    async def call():
        client = AsyncClient()
        if key is not None:
            headers["Authorization"] = key.header
        if method == "get":
            response = await client.get(URL, headers=headers)
        else:
            data = raw if raw is not None else json.dumps(body)
            response = await client.post(URL, data=data, content_type="application/json", headers=headers)
        if response.streaming:
            text = b"".join([chunk async for chunk in response.streaming_content]).decode()
        else:
            text = response.content.decode()
        return Answer(response.status_code, response.headers, text)

    return async_to_sync(call)()


def ask(text: str, **fields) -> dict:
    """A request body with one user message."""
    return {"messages": [{"role": "user", "content": text}], **fields}


def run_as_served(main):
    """Await ``main()`` on an event loop of a thread of its own, as uvicorn runs the application
    (no async_to_sync caller: on PostgreSQL the turn's statements take psycopg's async pool),
    then close that loop's pool. Returns what ``main`` returns; raises what it raises."""
    from chat.completions import turn_store

    outcome = {}

    async def run():
        try:
            return await main()
        finally:
            await turn_store.close_async_pool()  # this loop ends here; uvicorn's lives as long as the server

    def thread():
        try:
            outcome["value"] = asyncio.run(run())
        except BaseException as exc:  # re-raised in the caller's thread
            outcome["error"] = exc

    worker = threading.Thread(target=thread)
    worker.start()
    worker.join()
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]
