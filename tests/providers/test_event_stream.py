"""The SSE decoder of provider streams (providers/event_stream.py): events split anywhere across
network reads, every line ending, comments, multi-line data, unfinished events."""

import pytest

from providers.event_stream import EventDecoder, is_event_stream

STREAM = (
    ": keep-alive comment\r\n"
    "data: {\"a\": \"é—中文\"}\r\n"
    "\r\n"
    "event: message\n"
    "id: 7\n"
    "retry: 100\n"
    "data:first line\n"
    "data:  second line\n"
    "\n"
    "data\n"
    "\n"
    "event: only-a-name\n"
    "\n"
    "data: cr only\r"
    "\r"
    "data: [DONE]\n"
    "\n"
).encode()
EXPECTED = ['{"a": "é—中文"}', "first line\n second line", "", "cr only", "[DONE]"]


def decode(pieces: list[bytes]) -> list[str]:
    decoder = EventDecoder()
    return [data for piece in pieces for data in decoder.feed(piece)]


def test_a_stream_read_at_once():
    assert decode([STREAM]) == EXPECTED


@pytest.mark.parametrize("cut", range(1, len(STREAM)))
def test_a_stream_split_at_any_byte_gives_the_same_events(cut):
    # Also between a CR and its LF, and inside a multi-byte character.
    assert decode([STREAM[:cut], STREAM[cut:]]) == EXPECTED


def test_a_stream_read_one_byte_at_a_time():
    assert decode([bytes([b]) for b in STREAM]) == EXPECTED


def test_an_event_is_handed_out_as_soon_as_its_blank_line_arrives():
    decoder = EventDecoder()
    assert decoder.feed(b"data: one\n") == []
    assert decoder.feed(b"\n") == ["one"]
    assert decoder.feed(b"data: two\r") == []
    assert decoder.feed(b"\r") == ["two"]  # a lone CR ends a line at once
    assert decoder.feed(b"\ndata: three\n\n") == ["three"]  # that LF pairs with the CR before it


def test_an_unfinished_event_gives_nothing():
    assert decode([b"data: one\n", b"data: two"]) == []


def test_the_content_type_check():
    assert is_event_stream("text/event-stream; charset=utf-8")
    assert is_event_stream("Text/Event-Stream")
    assert not is_event_stream("application/json")
    assert not is_event_stream("")
