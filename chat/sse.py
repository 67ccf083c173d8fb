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
_END = object()


async def with_keepalive(source: AsyncIterator, interval: float) -> AsyncIterator:
    """Yield the items of ``source``; yield SILENCE whenever it is quiet for ``interval`` s.

    A task reads ``source`` into a queue and one timer per stream adds SILENCE after a quiet
    interval, so each item costs a queue hand-over rather than a timed wait (a thousand
    streams relay thousands of chunks a second). An error of ``source`` is raised here.
    """
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    last_put = loop.time()

    def put(item, error=None) -> None:
        nonlocal last_put
        last_put = loop.time()
        queue.put_nowait((item, error))

    async def pump() -> None:
        try:
            async for item in source:
                put(item)
        except Exception as exc:  # handed to the consumer, raised there
            put(_END, exc)
        else:
            put(_END)

    def tick() -> None:
        nonlocal timer
        if loop.time() - last_put >= interval:
            put(SILENCE)
        timer = loop.call_later(max(last_put + interval - loop.time(), 0), tick)

    reader = asyncio.ensure_future(pump())
    timer = loop.call_later(interval, tick)
    try:
        while True:
            item, error = await queue.get()
            if item is _END:
                if error is not None:
                    raise error
                return
            yield item
    finally:
        timer.cancel()
        reader.cancel()
