"""config.renderers.JSONRenderer: orjson's speed, DRF's JSON."""

import json
from dataclasses import dataclass
from datetime import date, datetime, time, timezone
from decimal import Decimal

import numpy as np
import pytest
from django.utils.translation import gettext_lazy
from rest_framework import renderers
from rest_framework.exceptions import ErrorDetail

from config.renderers import JSONRenderer


@dataclass
class Point:
    x: int


def both(data, accepted_media_type=None):
    return JSONRenderer().render(data, accepted_media_type), renderers.JSONRenderer().render(data, accepted_media_type)


def test_plain_answers_are_byte_for_byte_drfs():
    data = {"code": 200, "statusText": "", "message": "", "data": {
        "list": [{"id": "6b07", "q": "退货 \"quoted\" \\ back\nslash", "chunkIndex": 3, "score": [{"value": 0.5, "index": 0}]}],
        "usingReRank": False, "notes": [], "extension": None, "count": -12, "ratio": 0.1,
    }}
    ours, theirs = both(data)
    assert ours == theirs


def test_other_values_are_encoded_by_drfs_encoder():
    moment = datetime(2026, 11, 25, 22, 1, 2, 345678, tzinfo=timezone.utc)
    data = {"at": moment, "day": date(2026, 11, 25), "time": time(8, 30, 15, 123456), "price": Decimal("1.10"),
            "lazy": gettext_lazy("Not found."), "error": ErrorDetail("bad", code="invalid"), "array": np.arange(3),
            1: "int key", "separators": "a\u2028b\u2029c"}
    ours, theirs = both(data)
    assert json.loads(ours) == json.loads(theirs)
    assert b'"at":"2026-11-25T22:01:02.345678Z"' in ours  # DRF's datetime text (Z, not +00:00)
    assert b"a\\u2028b\\u2029c" in ours


def test_what_drf_refuses_is_refused_alike():
    with pytest.raises(TypeError):
        JSONRenderer().render({"point": Point(1)})  # (orjson alone would encode a dataclass)


def test_indent_and_what_orjson_cannot_encode_go_to_drf():
    ours, theirs = both({"a": [1, 2]}, "application/json; indent=2")
    assert ours == theirs and b"\n  " in ours
    ours, theirs = both({"big": 2**70})
    assert ours == theirs == b'{"big":1180591620717411303424}'


def test_floats_keep_their_values_and_nan_is_null():
    values = [1e-05, 1e16, 0.1 + 0.2, -0.0, 123456.789]
    assert json.loads(JSONRenderer().render(values)) == values
    assert JSONRenderer().render({"x": float("nan")}) == b'{"x":null}'
    assert JSONRenderer().render(None) == b""
