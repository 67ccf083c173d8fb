"""Server-sent events as OpenAI clients and FastGPT clients read them."""

import asyncio
import json
from collections.abc import AsyncIterator

KEEPALIVE = b": keep-alive\n\n"
DONE = "[DONE]"


def data(payload) -> bytes:
    """An unnamed event (OpenAI's format): `data: <json>`."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"data: {text}\n\n".encode()


def event(name: str, payload) -> bytes:
    """A named event (FastGPT's detail format): `event: <name>` then `data: <json>`."""
    text = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return f"event: {name}\ndata: {text}\n\n".encode()


class Silence:
    """Marks a pause longer than the keep-alive interval in `with_keepalive`."""


SILENCE = Silence()


async def with_keepalive(source: AsyncIterator, interval: float) -> AsyncIterator:
    """Yield the items of ``source``; yield SILENCE whenever it is quiet for ``interval`` s.

    The pending read is not cancelled by a pause, only by the consumer going away.
    """
    iterator = aiter(source)
    pending: asyncio.Future | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(iterator))
            done, _ = await asyncio.wait({pending}, timeout=interval)
            if not done:
                yield SILENCE
                continue
            finished, pending = pending, None
            try:
                item = finished.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        if pending is not None:
            pending.cancel()
