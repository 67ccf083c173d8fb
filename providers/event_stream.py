"""Server-sent events as a provider sends them: the `data` of each event, decoded by the
WHATWG event-stream rules (https://html.spec.whatwg.org/multipage/server-sent-events.html).

Lines end with CRLF, LF or CR and may be split anywhere across network reads (also between
the CR and the LF, or inside a multi-byte character: lines are decoded only once complete);
a line starting with `:` is a comment; `data:` lines (one optional space after the colon) are
joined with newlines; a blank line ends an event; other fields (`event`, `id`, `retry`) are
read and ignored; an event left unfinished when the stream ends is dropped (no blank line
after it), as is a last line without its line ending.
"""

from collections.abc import AsyncIterable, AsyncIterator


def is_event_stream(content_type: str) -> bool:
    return "text/event-stream" in content_type.lower()


class EventDecoder:
    """Fed raw bytes as they arrive; `feed` returns the data of every event completed by them."""

    def __init__(self) -> None:
        self._tail = b""  # an unfinished line
        self._skip_lf = False  # the last read ended with a CR: a LF opening the next is its pair
        self._data: list[str] = []
        self._has_data = False

    def feed(self, chunk: bytes) -> list[str]:
        if self._skip_lf and chunk:
            self._skip_lf = False
            if chunk.startswith(b"\n"):
                chunk = chunk[1:]
        buffer = self._tail + chunk if self._tail else chunk
        lines = buffer.splitlines(keepends=True)  # bytes: splits on \r\n, \n and \r only
        self._tail = lines.pop() if lines and not lines[-1].endswith((b"\n", b"\r")) else b""
        if not self._tail and lines and lines[-1].endswith(b"\r"):
            self._skip_lf = True  # the read ended right after a CR
        events = []
        for raw in lines:
            event = self._line(raw.rstrip(b"\r\n").decode("utf-8", "replace"))
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> str | None:
        if not line:
            if not self._has_data:
                return None
            data = "\n".join(self._data)
            self._data, self._has_data = [], False
            return data
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        if name == "data":
            self._data.append(value)
            self._has_data = True
        return None


async def event_data(chunks: AsyncIterable[bytes]) -> AsyncIterator[str]:
    """The data of each event of a byte stream."""
    decoder = EventDecoder()
    async for chunk in chunks:
        for data in decoder.feed(chunk):
            yield data
