"""JSON request bodies, decided once at the input boundary.

Every API body is parsed here: by the DRF parser below (the default parser of every DRF view)
and by the chat-completions view. What neither database can store is refused with 400 naming
the field before any work is done — so no model is ever called with text whose turn cannot be
saved afterwards:

- `\\u0000` (PostgreSQL's text and jsonb refuse the NUL character);
- lone surrogates such as `\\ud800` (not Unicode text: they cannot be encoded as UTF-8, so
  neither a provider request nor a database row can carry them);
- nesting deeper than MAX_DEPTH (deeper documents crash recursive code with RecursionError).
"""

import json
import re
from typing import Any

from rest_framework.parsers import JSONParser

from config.errors import BadRequest

MAX_DEPTH = 64
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def parse_json(raw: bytes | str) -> Any:
    """The JSON document in ``raw``, or BadRequest naming what is wrong and where."""
    try:
        document = json.loads(raw)
    except RecursionError:
        raise BadRequest(f"JSON nested too deeply (at most {MAX_DEPTH} levels).") from None
    except ValueError as exc:  # JSONDecodeError, and UnicodeDecodeError for non-UTF-8 bytes
        raise BadRequest(f"JSON parse error - {exc}") from None
    check_storable(document)
    return document


def check_storable(document: Any) -> None:
    """BadRequest if ``document`` nests deeper than MAX_DEPTH or holds text no database can store.

    Iterative (an explicit stack), so a deep document cannot exhaust the interpreter's stack.
    """
    stack: list[tuple[Any, str, int]] = [(document, "", 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, str):
            _check_text(value, path or "body")
            continue
        if not isinstance(value, (dict, list)):
            continue
        if depth > MAX_DEPTH:
            raise BadRequest(f"{path or 'body'}: JSON nested too deeply (at most {MAX_DEPTH} levels).")
        if isinstance(value, dict):
            for key, item in value.items():
                child = f"{path}.{key}" if path else key
                _check_text(key, f"{child} (the key)")
                stack.append((item, child, depth + 1))
        else:
            for index, item in enumerate(value):
                stack.append((item, f"{path}[{index}]", depth + 1))


def _check_text(text: str, path: str) -> None:
    found = _UNSTORABLE.search(text)
    if found is None:
        return
    if found.group() == "\x00":
        raise BadRequest(f"{path}: text may not contain the NUL character (\\u0000).")
    raise BadRequest(f"{path}: text may not contain a lone surrogate (\\u{ord(found.group()):04x}).")


class StrictJSONParser(JSONParser):
    """DRF's JSON parser, through `parse_json` (settings: DEFAULT_PARSER_CLASSES)."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        return parse_json(raw)
