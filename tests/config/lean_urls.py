"""A URL conf for the lean handler's own steps (config/asgi.py `LeanHandler.handle_on_loop`):
the chat path served by a view that answers, streams or waits as the body says, and notes
in which thread it ran."""

import asyncio
import json
import threading

from django.http import JsonResponse, StreamingHttpResponse
from django.urls import path

SEEN: list[tuple[str, str]] = []  # (what, thread name), in order; the tests clear it


async def chat(request):
    SEEN.append(("view", threading.current_thread().name))
    action = json.loads(request.body)["do"]
    if action == "stream":

        async def words():
            for word in ("one ", "two ", "three"):
                yield word

        return StreamingHttpResponse(words())
    if action == "wait":
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            SEEN.append(("cancelled", threading.current_thread().name))
            raise
    return JsonResponse({"ok": True})


urlpatterns = [path("api/v1/chat/completions", chat)]
