"""Calling the chat-completions view in-process through Django's ASGI test client."""

import json

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
