"""File bytes → readable text (and, for csv, question/answer rows).

`read_document` picks the reader by the file name's extension. A file that cannot be parsed,
or that holds no text, raises DocumentUnreadable with a message meant for the user (the
collection shows it in its error state): nothing is ever silently empty.
"""

import csv
import io
import logging
from dataclasses import dataclass

from .charset import decode_text
from .errors import DocumentUnreadable, UnsupportedFileType
from .html import html_to_text
from .pipe_tables import pipe_table

__all__ = ["SUPPORTED_EXTENSIONS", "DocumentUnreadable", "ReadDocument", "UnsupportedFileType", "read_document"]

SUPPORTED_EXTENSIONS = ("txt", "md", "html", "htm", "pdf", "docx", "csv")
_MARKDOWN_EXTENSIONS = ("md", "markdown")  # .markdown read as md, not advertised


@dataclass
class ReadDocument:
    text: str  # the whole readable text (csv: the rows joined)
    rows: list[tuple[str, str]] | None = None  # csv only: (q, a) per row, the header row kept


def extension_of(filename: str) -> str:
    name = filename.rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    return name.rsplit(".", 1)[-1].lower() if "." in name else ""


def read_document(*, filename: str, content: bytes, selector: str | None = None) -> ReadDocument:
    """Read a file by its extension; `selector` (CSS) applies to html only."""
    ext = extension_of(filename)
    if ext not in SUPPORTED_EXTENSIONS and ext not in _MARKDOWN_EXTENSIONS:
        shown = f".{ext}" if ext else "a file without an extension"
        raise UnsupportedFileType(f"{shown} is not supported; supported file types: {', '.join(SUPPORTED_EXTENSIONS)}")
    if not content:
        raise DocumentUnreadable(f"{filename} is empty: no text to import")
    if ext == "csv":
        return _read_csv(content, filename)
    if ext in ("html", "htm"):
        text = html_to_text(content, selector=selector)
    elif ext == "pdf":
        text = _read_pdf(content, filename)
    elif ext == "docx":
        text = _read_docx(content, filename)
    else:  # txt, md
        text = decode_text(content, what=filename)
    return ReadDocument(text=_non_empty(text, filename))


def _non_empty(text: str, filename: str) -> str:
    text = text.replace("\x00", "").strip()
    if not text:
        raise DocumentUnreadable(f"{filename} has no text to import")
    return text


def _read_pdf(content: bytes, filename: str) -> str:
    from pypdf import PdfReader

    # pypdf logs every recoverable defect of a damaged file as a warning; what matters is the outcome.
    logging.getLogger("pypdf").setLevel(logging.ERROR)
    try:
        reader = PdfReader(io.BytesIO(content))
        if reader.is_encrypted and not reader.decrypt(""):
            raise DocumentUnreadable(f"{filename} is a password-protected PDF")
        pages = [(page.extract_text() or "").strip() for page in reader.pages]
    except DocumentUnreadable:
        raise
    except Exception as exc:  # pypdf raises many kinds (PdfReadError, ValueError, KeyError…) on damaged files
        raise DocumentUnreadable(f"{filename} is not a readable PDF ({type(exc).__name__}: {exc})") from exc
    text = "\n\n".join(p for p in pages if p)
    if not text.strip():
        raise DocumentUnreadable(f"{filename} has no text to import (a scanned PDF? images are not read)")
    return text


def _read_docx(content: bytes, filename: str) -> str:
    import docx
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = docx.Document(io.BytesIO(content))
        blocks: list[str] = []
        for item in document.iter_inner_content():
            if isinstance(item, Paragraph):
                blocks.append(_docx_paragraph(item))
            elif isinstance(item, Table):
                blocks.append(_docx_table(item))
    except Exception as exc:  # BadZipFile, KeyError (missing part), lxml's XMLSyntaxError… of a damaged package
        raise DocumentUnreadable(f"{filename} is not a readable Word document ({type(exc).__name__}: {exc})") from exc
    return "\n\n".join(b for b in blocks if b.strip())


def _docx_paragraph(paragraph) -> str:
    text = paragraph.text.strip()
    style = (paragraph.style.name if paragraph.style is not None else "") or ""
    if text and style.startswith("Heading "):
        level = style.removeprefix("Heading ").strip()
        if level.isdigit() and 1 <= int(level) <= 6:
            return f"{'#' * int(level)} {text}"
    if text and style == "Title":
        return f"# {text}"
    if text and style.startswith("List"):
        return f"- {text}"
    return text


def _docx_table(table) -> str:
    return pipe_table([[" ".join(cell.text.split()) for cell in row.cells] for row in table.rows])


def _read_csv(content: bytes, filename: str) -> ReadDocument:
    """One row per (q, a): q the first column, a the other columns joined by newlines. Like
    FastGPT's csv import, the first row (the header) is kept as a row of its own."""
    text = decode_text(content, what=filename)
    sample = text[:16384]
    try:
        dialect = csv.Sniffer().sniff(sample, delimiters=",;\t|")
    except csv.Error:
        dialect = csv.excel
    try:
        parsed = list(csv.reader(io.StringIO(text), dialect))
    except csv.Error as exc:
        raise DocumentUnreadable(f"{filename} is not a readable CSV file: {exc}") from exc
    rows: list[tuple[str, str]] = []
    for cells in parsed:
        cells = [c.strip() for c in cells]
        q = cells[0] if cells else ""
        a = "\n".join(c for c in cells[1:] if c)
        if q or a:
            rows.append((q, a))
    if not rows:
        raise DocumentUnreadable(f"{filename} has no rows to import")
    joined = "\n\n".join(f"{q}\n{a}" if a else q for q, a in rows)
    return ReadDocument(text=joined, rows=rows)
