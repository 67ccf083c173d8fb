"""FastGPT's splitting ladder: text → chunks of about `chunk_size` characters.

The ladder, coarsest first (each level is used only for pieces still too big):

1. hard breaks: FastGPT's `-----CUSTOM_SPLIT_SIGN-----` and the client's `chunkSplitter`
   (`|`-separated alternatives; the separator itself is dropped; parts are never merged);
2. Markdown sections, `#` down to `######` limited to PARAGRAPH_DEPTH levels — a section that
   fits stays whole, small sibling sections share a chunk, and every chunk of a section that
   does not start with its heading carries the heading path (`# A\\n## B\\n…`) prepended;
3. fenced code blocks and pipe tables: kept whole when they fit; a code block bigger than a
   chunk is kept whole up to `max_size` (then split by lines); a table bigger than a chunk is
   split by rows with its header (and separator row) repeated in each part;
4. blank lines; 5. newlines; 6. sentence ends `。` / `. `; then `！`, `？`, `；`, `，` (and their
   ASCII forms before a space) — at these punctuation levels consecutive chunks overlap by
   about `overlap_ratio` of a chunk (whole sentences/clauses from the previous chunk);
7. last resort: fixed slices.

Pieces are packed greedily up to the budget (chunk size minus the heading prefix); a chunk
smaller than 0.4× chunk size is merged into the previous chunk of the same section when the
result stays ≤ 1.2× chunk size. Work is done on offsets into the text (no copying while
splitting), so 5 MB chunks in well under a second.

Guarantees (property-tested): every non-space character of the input appears in the chunks in
order (the client's separators excepted); each chunk ≤ 1.2× chunk_size, except a code block or a
table's single row kept whole (≤ max_size); the same input gives the same chunks.
"""

import re
from dataclasses import dataclass

CUSTOM_SPLIT_SIGN = "-----CUSTOM_SPLIT_SIGN-----"
PARAGRAPH_DEPTH = 5  # FastGPT's paragraphChunkDeep: deeper headings are plain text
MIN_CHUNK_SIZE = 64
MAX_CHUNK_SIZE = 8000
DEFAULT_CHUNK_SIZE = 1000
DEFAULT_INDEX_SIZE = 512
TAIL_RATIO = 0.4  # a last chunk smaller than this × chunk_size is merged into the previous one
STRETCH = 1.2  # … as long as the merged chunk stays within this × chunk_size
MAX_PREFIX_RATIO = 0.3  # heading path prefixes are cut to this × chunk_size


class InvalidChunkSettings(ValueError):
    """A chunk setting of the request has the wrong type or value (the API answers 400)."""


@dataclass(frozen=True)
class ChunkSettings:
    chunk_size: int = DEFAULT_CHUNK_SIZE  # characters
    overlap_ratio: float = 0.15
    custom_splitter: str = ""  # FastGPT's chunkSplitter; "|"-separated alternatives
    max_size: int = 8000  # code blocks kept whole up to this
    index_size: int = DEFAULT_INDEX_SIZE  # FastGPT's indexSize, stored for the index texts

    @classmethod
    def from_request(cls, settings: dict, *, default_size: int = DEFAULT_CHUNK_SIZE) -> "ChunkSettings":
        """From FastGPT's fields: chunkSettingMode auto|custom, chunkSplitMode size|char|paragraph,
        chunkSize, indexSize, chunkSplitter. `auto` means the defaults (paragraph mode, 1000
        characters); without chunkSettingMode, a chunkSize or chunkSplitter sent by an older
        client counts as custom. chunkSize is clamped to 64…8000; the splitter applies in the
        `char` split mode (or when no split mode is given). `default_size`: the chunk size when
        none is sent (`qa` collections cut larger chunks than `chunk` ones)."""
        settings = settings or {}
        mode = settings.get("chunkSettingMode")
        if mode is None:
            mode = "custom" if any(settings.get(k) not in (None, "") for k in ("chunkSize", "chunkSplitter")) else "auto"
        if mode not in ("auto", "custom"):
            raise InvalidChunkSettings("chunkSettingMode must be 'auto' or 'custom'")
        split_mode = settings.get("chunkSplitMode")
        if split_mode not in (None, "", "size", "char", "paragraph"):
            raise InvalidChunkSettings("chunkSplitMode must be 'size', 'char' or 'paragraph'")
        chunk_size = _int_setting(settings, "chunkSize", default_size)
        index_size = _int_setting(settings, "indexSize", DEFAULT_INDEX_SIZE)
        splitter = settings.get("chunkSplitter") or ""
        if not isinstance(splitter, str):
            raise InvalidChunkSettings("chunkSplitter must be a string")
        if mode == "auto":
            return cls(chunk_size=default_size)
        return cls(
            chunk_size=min(max(chunk_size, MIN_CHUNK_SIZE), MAX_CHUNK_SIZE),
            custom_splitter=splitter if split_mode in (None, "", "char") else "",
            index_size=min(max(index_size, MIN_CHUNK_SIZE), MAX_CHUNK_SIZE),
        )


def _int_setting(settings: dict, name: str, default: int) -> int:
    value = settings.get(name)
    if value in (None, ""):
        return default
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise InvalidChunkSettings(f"{name} must be a number")
    try:
        number = int(float(value))
    except (TypeError, ValueError, OverflowError):
        raise InvalidChunkSettings(f"{name} must be a number") from None
    if number <= 0:
        raise InvalidChunkSettings(f"{name} must be positive")
    return number


@dataclass(frozen=True)
class Chunk:
    text: str
    index: int  # chunkIndex, 0-based


def split_text(text: str, settings: ChunkSettings | None = None) -> list[Chunk]:
    """Split `text` into chunks following FastGPT's ladder (see the module docstring)."""
    settings = settings or ChunkSettings()
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    splitter = _Splitter(text, settings)
    for s, e in _hard_parts(text, settings.custom_splitter):
        splitter.part(s, e)
    return [Chunk(text=t, index=i) for i, t in enumerate(splitter.finish())]


def _hard_parts(text: str, custom: str) -> list[tuple[int, int]]:
    """Spans between hard separators (the separators themselves are dropped)."""
    alternatives = [CUSTOM_SPLIT_SIGN] + [a for a in (custom.split("|") if custom else []) if a]
    # Longest first, so "\n\n" wins over "\n" where both are given.
    pattern = re.compile("|".join(re.escape(a) for a in sorted(set(alternatives), key=len, reverse=True)))
    parts, start = [], 0
    for m in pattern.finditer(text):
        parts.append((start, m.start()))
        start = m.end()
    parts.append((start, len(text)))
    return parts


# --- structure: lines → blocks → section tree ----------------------------------------------------

_HEADING = re.compile(r" {0,3}(#{1,6})[ \t]+\S")
_FENCE = re.compile(r" {0,3}(`{3,}|~{3,})")
_TABLE_SEPARATOR = re.compile(r"\s*\|?\s*:?-{1,}:?\s*(\|\s*:?-{1,}:?\s*)*\|?\s*$")

TEXT, HEADING, CODE, TABLE, SECTION = "text", "heading", "code", "table", "section"


class _Piece:
    """A span of the text and how to split it further."""

    __slots__ = ("s", "e", "kind", "level", "children", "heading")

    def __init__(self, s, e, kind, level=0, children=None, heading=None):
        self.s, self.e, self.kind, self.level = s, e, kind, level
        self.children = children  # SECTION: its pieces (heading line first)
        self.heading = heading  # SECTION: (offset, heading line text)


def _structure(text: str, s: int, e: int) -> list[_Piece]:
    """The pieces of text[s:e]: Markdown sections (nested), code blocks, tables and text runs."""
    root: list[_Piece] = []
    stack: list[tuple[int, list[_Piece], _Piece | None]] = [(0, root, None)]  # (level, children, section)
    lines = text[s:e].splitlines(keepends=True)
    pos, i, n = s, 0, len(lines)
    text_start = None

    def add(piece: _Piece) -> None:
        stack[-1][1].append(piece)

    def flush_text(end: int) -> None:
        nonlocal text_start
        if text_start is not None and end > text_start:
            add(_Piece(text_start, end, TEXT, 0))
        text_start = None

    while i < n:
        line = lines[i]
        fence = _FENCE.match(line)
        if fence:
            flush_text(pos)
            mark, start, j, end = fence.group(1), pos, i + 1, pos + len(line)
            while j < n:
                end += len(lines[j])
                j += 1
                if lines[j - 1].lstrip(" ").startswith(mark[0] * len(mark)) and not lines[j - 1].strip().strip(mark[0]):
                    break
            add(_Piece(start, end, CODE))
            pos, i = end, j
            continue
        if line.lstrip().startswith("|") and i + 1 < n and lines[i + 1].lstrip().startswith("|"):
            flush_text(pos)
            start, j, end = pos, i, pos
            while j < n and lines[j].lstrip().startswith("|"):
                end += len(lines[j])
                j += 1
            add(_Piece(start, end, TABLE))
            pos, i = end, j
            continue
        heading = _HEADING.match(line)
        if heading and len(heading.group(1)) <= PARAGRAPH_DEPTH:
            flush_text(pos)
            level = len(heading.group(1))
            while stack[-1][0] >= level:
                stack.pop()
            title = line.strip()
            section = _Piece(pos, pos, SECTION, level, children=[], heading=(pos, title))
            add(section)
            stack.append((level, section.children, section))
            section.children.append(_Piece(pos, pos + len(line), HEADING, 1))
            pos += len(line)
            i += 1
            continue
        if text_start is None:
            text_start = pos
        pos += len(line)
        i += 1
    flush_text(pos)
    _close(root)
    return root


def _close(pieces: list[_Piece]) -> None:
    """Set each section's end to its last child's end."""
    for piece in pieces:
        if piece.kind == SECTION:
            _close(piece.children)
            piece.e = piece.children[-1].e


# --- the ladder over text runs -------------------------------------------------------------------

# Cut after each match; the separator stays with the piece before it.
_TEXT_LEVELS = [
    re.compile(r"\n[ \t]*\n\s*"),  # blank lines
    re.compile(r"\n"),
    re.compile(r"。|\.(?=\s)"),
    re.compile(r"！|!(?=\s)"),
    re.compile(r"？|\?(?=\s)"),
    re.compile(r"；|;(?=\s)"),
    re.compile(r"，|,(?=\s)"),
]
_OVERLAP_LEVELS = frozenset({3, 4, 5, 6, 7})  # pieces produced by the punctuation levels (index + 1)
_FIXED = len(_TEXT_LEVELS)


class _Out:
    """A chunk before rendering: a span, or explicit text (table parts), with its heading path."""

    __slots__ = ("s", "e", "path", "text", "mergeable", "part")

    def __init__(self, s, e, path, text=None, mergeable=True, part=0):
        self.s, self.e, self.path, self.text, self.mergeable, self.part = s, e, path, text, mergeable, part


class _Splitter:
    def __init__(self, text: str, settings: ChunkSettings):
        self.t = text
        self.size = settings.chunk_size
        self.max_size = max(settings.max_size, settings.chunk_size)
        self.overlap = int(self.size * min(max(settings.overlap_ratio, 0.0), 0.4))
        self.prefix_cap = int(self.size * MAX_PREFIX_RATIO)
        self.out: list[_Out] = []
        self.part_no = 0
        self.carry: int | None = None  # start of heading lines waiting to lead the next chunk
        self._prefixes: dict[tuple, str] = {}

    # -- entry points --

    def part(self, s: int, e: int) -> None:
        self.part_no += 1
        if self.t[s:e].strip():
            self._pack(_structure(self.t, s, e), ())

    def finish(self) -> list[str]:
        merged: list[_Out] = []
        limit = int(self.size * STRETCH)
        for chunk in self.out:
            prev = merged[-1] if merged else None
            if (
                prev is not None
                and chunk.mergeable
                and prev.mergeable
                and chunk.part == prev.part
                and chunk.path == prev.path
                and chunk.e - chunk.s < self.size * TAIL_RATIO
                and chunk.s <= prev.e + 2
                and not self.t[prev.e : chunk.s].strip()
                and len(self._prefix(prev.path, prev.s)) + chunk.e - prev.s <= limit
            ):
                prev.e = chunk.e
                continue
            merged.append(chunk)
        rendered = []
        for chunk in merged:
            body = (chunk.text if chunk.text is not None else self.t[chunk.s : chunk.e]).strip()
            if body:
                prefix = self._prefix(chunk.path, chunk.s)
                rendered.append(prefix + body)
        return rendered

    # -- heading paths --

    def _prefix(self, path: tuple, s: int) -> str:
        """The heading lines of `path` that come before offset `s`, cut to the prefix cap."""
        heads = tuple(h for h in path if h[0] < s)
        if not heads:
            return ""
        cached = self._prefixes.get(heads)
        if cached is None:
            lines = [title for _, title in heads]
            while len(lines) > 1 and sum(len(x) + 1 for x in lines) > self.prefix_cap:
                lines.pop(0)  # the outermost headings go first
            if len(lines[0]) + 1 > self.prefix_cap:
                lines[0] = lines[0][: max(self.prefix_cap - 2, 1)] + "…"
            cached = self._prefixes[heads] = "\n".join(lines) + "\n"
        return cached

    def _budget(self, path: tuple) -> int:
        return self.size - len(self._prefix(path, 1 << 62))

    # -- packing --

    def _emit(self, s: int, e: int, path: tuple, text: str | None = None, mergeable: bool = True) -> None:
        carry, self.carry = self.carry, None
        if carry is not None and text is None:
            if len(self._prefix(path, carry)) + e - carry <= self.size * STRETCH:
                s = carry  # the section's heading lines lead its first chunk
            else:  # (absurdly long headings) on their own
                self.out.append(_Out(carry, s, path[:-1], None, True, self.part_no))
        elif carry is not None:
            self.out.append(_Out(carry, s, path[:-1], None, True, self.part_no))
        self.out.append(_Out(s, e, path, text, mergeable, self.part_no))

    def _pack(self, pieces: list[_Piece], path: tuple, overlap: bool = False) -> None:
        """Greedily join consecutive pieces up to the budget; split further those too big."""
        budget = self._budget(path)
        buf: list[_Piece] = []
        buf_len = 0
        for piece in pieces:
            length = piece.e - piece.s
            if length > budget:
                start = buf[0].s if buf and self.carry is None else self.carry
                if (
                    buf
                    and all(p.kind == HEADING or not self.t[p.s : p.e].strip() for p in buf)
                    and buf[-1].e - start <= budget // 2
                ):
                    # Only heading lines (or blank) so far, e.g. a section opening with a
                    # subsection: they lead the first chunk of what follows, not stand alone.
                    self.carry = start
                elif buf:
                    if self.carry is not None:  # headings too long to carry further: on their own
                        self.out.append(_Out(self.carry, buf[0].s, path, None, True, self.part_no))
                        self.carry = None
                    self._emit(buf[0].s, buf[-1].e, path)
                buf, buf_len = [], 0
                self._expand(piece, path, budget)
                continue
            if buf and buf_len + length > budget:
                self._emit(buf[0].s, buf[-1].e, path)
                kept: list[_Piece] = []
                if overlap:
                    room = min(self.overlap, budget - length)
                    taken = 0
                    for prev in reversed(buf[1:]):  # never the whole buffer: each chunk must advance
                        if taken + (prev.e - prev.s) > room:
                            break
                        taken += prev.e - prev.s
                        kept.append(prev)
                    kept.reverse()
                buf = kept
                buf_len = sum(p.e - p.s for p in kept)
            buf.append(piece)
            buf_len += length
        if buf:
            self._emit(buf[0].s, buf[-1].e, path)

    def _expand(self, piece: _Piece, path: tuple, budget: int) -> None:
        if piece.kind == SECTION:
            self._pack(piece.children, path + (piece.heading,))
        elif piece.kind == CODE:
            if piece.e - piece.s + len(self._prefix(path, 1 << 62)) <= self.max_size:
                self._emit(piece.s, piece.e, path, mergeable=False)
            else:
                self._split_text(piece.s, piece.e, 1, path, budget)
        elif piece.kind == TABLE:
            self._split_table(piece, path, budget)
        else:
            self._split_text(piece.s, piece.e, piece.level, path, budget)

    def _split_text(self, s: int, e: int, level: int, path: tuple, budget: int) -> None:
        """Split text[s:e] at the first level (from `level` on) that cuts it, and pack the pieces."""
        t = self.t
        while level < _FIXED:
            cuts = [m.end() for m in _TEXT_LEVELS[level].finditer(t, s, e) if s < m.end() < e]
            if cuts:
                bounds = [s, *cuts, e]
                pieces = [_Piece(a, b, TEXT, level + 1) for a, b in zip(bounds, bounds[1:])]
                self._pack(pieces, path, overlap=level + 1 in _OVERLAP_LEVELS)
                return
            level += 1
        for a in range(s, e, budget):  # last resort: fixed slices
            self._emit(a, min(a + budget, e), path)

    def _split_table(self, piece: _Piece, path: tuple, budget: int) -> None:
        """Rows packed up to the budget, each part starting with the header (and separator) rows."""
        t = self.t
        rows, pos = [], piece.s
        for line in t[piece.s : piece.e].splitlines(keepends=True):
            rows.append((pos, pos + len(line)))
            pos += len(line)
        head = 2 if len(rows) > 1 and _TABLE_SEPARATOR.match(t[rows[1][0] : rows[1][1]]) else 1
        header = t[rows[0][0] : rows[head - 1][1]]
        if not header.endswith("\n"):
            header += "\n"
        if len(header) > budget // 2 or len(rows) <= head:  # a header that big cannot be repeated
            self._split_text(piece.s, piece.e, 1, path, budget)
            return
        room = budget - len(header)
        first = True
        group: list[tuple[int, int]] = []
        size = 0

        def flush() -> None:
            nonlocal first, group, size
            if group:
                s, e = group[0][0], group[-1][1]
                # The first part starts with the real header (a plain span); the others repeat it.
                self._emit(piece.s if first else s, e, path, None if first else header + t[s:e], mergeable=False)
                first, group, size = False, [], 0

        for a, b in rows[head:]:
            if b - a > room:  # a row too long for any chunk: on its own, split as text
                flush()
                if first:
                    self._emit(piece.s, rows[head - 1][1], path, mergeable=False)
                    first = False
                if b - a + len(self._prefix(path, 1 << 62)) <= self.max_size:
                    self._emit(a, b, path, mergeable=False)
                else:
                    self._split_text(a, b, 2, path, budget)
                continue
            if size + b - a > room:
                flush()
            group.append((a, b))
            size += b - a
        flush()
