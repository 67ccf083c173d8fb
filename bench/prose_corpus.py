"""A corpus of real English prose found on this machine, for the search benchmark at scale.

The synthetic corpus of bench/search_corpus.py draws each chunk's words independently (real
words, real frequencies, no topic): every chunk is about nothing, so near neighbours share only
chance words. That is HNSW's worst case and not what a knowledge base holds. This one is what
people write: the docstrings, comment blocks and text files (README, METADATA, .rst/.md/.txt)
of the Python installation running the benchmark — the standard library and the venv's
packages — cut into windows of 80 words (as 40–120-word chunks are cut), duplicates dropped.
Nothing is downloaded; the same machine and venv give the same chunks in the same order.
"""

import ast
import re
import sys
import sysconfig
from pathlib import Path

import numpy as np

WINDOW_WORDS = 80
MIN_WORDS = 15
MAX_TEXT_FILE_BYTES = 2_000_000
TEXT_FILES = (".rst", ".md", ".txt")
_PROSE = re.compile(r"[a-z]{3,} [a-z]{3,} [a-z]{3,}")  # three lowercase words in a row


def roots() -> list[Path]:
    """The standard library (its site-packages included) and this venv's packages."""
    found = [Path(sysconfig.get_paths()["stdlib"]), Path(sysconfig.get_paths()["purelib"])]
    return sorted({p.resolve() for p in found if p.is_dir()})


# Beyond the ~110k chunks of 80-word windows (a corpus of 1,000,000 chunks): the same prose cut
# again with other window sizes and offsets, as a knowledge base holding the same documents
# under several chunk settings would — chunks that overlap the first ones in part.
MORE_WINDOWS = ((80, 40), (60, 0), (100, 0), (60, 30), (100, 50), (120, 0), (40, 0), (120, 60), (40, 20),
                (70, 35), (90, 45), (50, 25), (45, 0), (55, 0), (65, 0), (75, 0), (85, 0), (95, 0), (110, 0),
                (30, 0), (35, 0), (105, 0))


def prose_chunks(limit: int, *, seed: int) -> list[str]:
    """Up to `limit` distinct chunks of real prose, in a shuffled but repeatable order: the
    80-word windows first (the same chunks for any limit up to their number), then — for a
    larger limit — the MORE_WINDOWS cuts of the same texts, shuffled after them."""
    texts: list[list[str]] = []

    def add(text: str) -> None:
        texts.append([w for w in text.split() if w.isprintable()])  # no NUL or control characters

    for root in roots():
        for path in sorted(root.rglob("*")):
            if path.suffix == ".py":
                _python_prose(path, add)
            elif (path.suffix in TEXT_FILES or path.name == "METADATA") and path.is_file():
                _text_file_prose(path, add)
    seen: set[str] = set()
    picked: list[str] = []
    for number, (size, offset) in enumerate(((WINDOW_WORDS, 0), *MORE_WINDOWS)):
        chunks = _windows(texts, size, offset, seen)
        order = np.random.default_rng(seed + number).permutation(len(chunks))
        picked += [chunks[i] for i in order[: limit - len(picked)]]
        if len(picked) >= limit:
            break
    if len(picked) < limit:
        print(f"prose corpus: only {len(picked):,} chunks found (asked {limit:,})", file=sys.stderr)
    return picked


def _windows(texts: list[list[str]], size: int, offset: int, seen: set[str]) -> list[str]:
    """Each text cut into `size`-word windows from word `offset` on, new pieces only."""
    chunks = []
    for words in texts:
        for start in range(offset, len(words), size):
            piece = " ".join(words[start : start + size])
            if len(piece.split()) >= MIN_WORDS and piece not in seen:
                seen.add(piece)
                chunks.append(piece)
    return chunks


def _python_prose(path: Path, add) -> None:
    try:
        source = path.read_text(encoding="utf-8")
        tree = ast.parse(source)
    except (OSError, SyntaxError, ValueError, UnicodeDecodeError, RecursionError):
        return
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            doc = ast.get_docstring(node)
            if doc:
                add(doc)
    block: list[str] = []
    for line in source.splitlines() + [""]:
        stripped = line.strip()
        if stripped.startswith("#") and not stripped.startswith("#!"):
            block.append(stripped.lstrip("# "))
            continue
        if block:
            add(" ".join(block))
        block = []


def _text_file_prose(path: Path, add) -> None:
    try:
        if path.stat().st_size > MAX_TEXT_FILE_BYTES:
            return
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError):
        return
    for paragraph in re.split(r"\n\s*\n", text):
        if _PROSE.search(paragraph):
            add(paragraph)
