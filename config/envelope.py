"""FastGPT's response envelope: every non-chat answer is `{code, statusText, message, data}`."""

from typing import Any

from rest_framework.response import Response


def envelope(*, code: int = 200, status_text: str = "", message: str = "", data: Any = None) -> dict:
    return {"code": code, "statusText": status_text, "message": message, "data": data}


def ok(data: Any = None) -> Response:
    """A successful answer carrying ``data``."""
    return Response(envelope(data=data))
