"""HTML → readable text (light Markdown), for .html files and fetched web pages.

Only what a reader sees as the page's content is kept: scripts, styles, navigation, headers,
footers, asides, forms and hidden elements are dropped. Headings become `#` lines (so the
chunker can carry the heading path), list items `- ` lines, tables Markdown pipe tables (so
they are split by rows with the header repeated) and `<pre>` blocks fenced code. With a CSS
selector (FastGPT's `metadata.webPageSelector`) only the matching elements are read; when it
matches nothing the whole page is read.
"""

import re

from bs4 import BeautifulSoup, Comment, Declaration, Doctype, NavigableString, ProcessingInstruction, Tag
from bs4.dammit import EncodingDetector
from soupsieve import SelectorSyntaxError

from .charset import decode_text
from .errors import DocumentUnreadable
from .pipe_tables import pipe_table

_DROP = frozenset(
    "script style noscript template iframe frame frameset object embed svg canvas math head title "
    "nav header footer aside form button select option input textarea dialog menu".split()
)
_DROP_ROLES = frozenset({"navigation", "banner", "contentinfo", "search", "menu", "menubar", "complementary"})
_HEADINGS = {f"h{n}": n for n in range(1, 7)}
_BLOCKS = frozenset(
    "p div section article main blockquote figure figcaption dl dt dd ul ol address details summary "
    "center body html hr".split()
)
_SKIP_STRINGS = (Comment, Declaration, Doctype, ProcessingInstruction)
_SPACES = re.compile(r"[ \t\r\n\f\v\u00a0]+")
_BLANK_RUNS = re.compile(r"\n{3,}")


def html_to_text(content: bytes | str, *, selector: str | None = None, encoding: str | None = None) -> str:
    """The readable text of an HTML document ('' when it has none)."""
    if isinstance(content, bytes):
        content = _decode(content, encoding)
    soup = BeautifulSoup(content, "lxml")
    roots: list[Tag] = []
    if selector and selector.strip():
        try:
            roots = soup.select(selector.strip())
        except SelectorSyntaxError as exc:
            raise DocumentUnreadable(f"webPageSelector {selector!r} is not a valid CSS selector: {exc}") from exc
    if not roots:
        roots = [soup.body or soup]
    out: list[str] = []
    for root in roots:
        if _dropped(root) and root is not soup and root is not soup.body:
            continue
        try:
            _render(root, out)
        except RecursionError:  # absurdly deep nesting: plain text is still better than nothing
            out.append(root.get_text("\n"))
        out.append("\n\n")
    return _tidy("".join(out))


def _decode(content: bytes, encoding: str | None) -> str:
    declared = encoding or EncodingDetector.find_declared_encoding(content, is_html=True, search_entire_document=False)
    if declared:
        try:
            return content.decode(declared).replace("\r\n", "\n")
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong declaration: detect instead
    return decode_text(content, what="web page")


def _dropped(tag: Tag) -> bool:
    if tag.name in _DROP:
        return True
    attrs = tag.attrs or {}
    if "hidden" in attrs or str(attrs.get("aria-hidden", "")).lower() == "true":
        return True
    if str(attrs.get("role", "")).lower() in _DROP_ROLES:
        return True
    style = str(attrs.get("style", "")).replace(" ", "").lower()
    return "display:none" in style or "visibility:hidden" in style


def _inline(tag: Tag) -> str:
    return _SPACES.sub(" ", tag.get_text(" ")).strip()


def _render(node: Tag, out: list[str]) -> None:
    for child in node.children:
        if isinstance(child, NavigableString):
            if not isinstance(child, _SKIP_STRINGS):
                out.append(_SPACES.sub(" ", str(child)))
            continue
        if not isinstance(child, Tag) or _dropped(child):
            continue
        name = child.name
        if name in _HEADINGS:
            text = _inline(child)
            if text:
                out.append(f"\n\n{'#' * _HEADINGS[name]} {text}\n\n")
        elif name == "pre":
            code = child.get_text().strip("\n")
            if code.strip():
                out.append(f"\n\n```\n{code}\n```\n\n")
        elif name == "table":
            out.append(f"\n\n{_table(child)}\n\n")
        elif name == "br":
            out.append("\n")
        elif name == "li":
            out.append("\n- ")
            _render(child, out)
        elif name == "tr":  # a row outside any table
            out.append("\n" + " | ".join(_inline(c) for c in child.find_all(["td", "th"], recursive=False)) + "\n")
        elif name in _BLOCKS:
            out.append("\n\n")
            _render(child, out)
            out.append("\n\n")
        else:
            _render(child, out)


def _table(table: Tag) -> str:
    """A Markdown pipe table: the first row (its <th> row when there is one) is the header."""
    rows = [
        [_inline(cell) for cell in tr.find_all(["td", "th"], recursive=False)]
        for tr in table.find_all("tr")
        if tr.find_parent("table") is table  # not a nested table's rows
    ]
    return pipe_table(rows)


def _tidy(text: str) -> str:
    """Strip each line (not inside ``` fences, where indentation matters), at most one blank line."""
    lines, fenced = [], False
    for line in text.split("\n"):
        if line.strip().startswith("```"):
            fenced = not fenced
            lines.append(line.strip())
        else:
            lines.append(line.rstrip() if fenced else line.strip())
    return _BLANK_RUNS.sub("\n\n", "\n".join(lines)).strip()
