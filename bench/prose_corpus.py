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


def prose_chunks(limit: int, *, seed: int) -> list[str]:
    """Up to `limit` distinct chunks of real prose, in a shuffled but repeatable order."""
    seen: set[str] = set()
    chunks: list[str] = []

    def add(text: str) -> None:
        words = [w for w in text.split() if w.isprintable()]  # no NUL or control characters
        for start in range(0, len(words), WINDOW_WORDS):
            piece = " ".join(words[start : start + WINDOW_WORDS])
            if len(piece.split()) >= MIN_WORDS and piece not in seen:
                seen.add(piece)
                chunks.append(piece)

    for root in roots():
        for path in sorted(root.rglob("*")):
            if path.suffix == ".py":
                _python_prose(path, add)
            elif (path.suffix in TEXT_FILES or path.name == "METADATA") and path.is_file():
                _text_file_prose(path, add)
    order = np.random.default_rng(seed).permutation(len(chunks))
    picked = [chunks[i] for i in order[:limit]]
    if len(picked) < limit:
        print(f"prose corpus: only {len(picked):,} chunks found (asked {limit:,})", file=sys.stderr)
    return picked


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
