"""Bytes of a text file → str, with the charset detected.

The ladder: a byte-order mark decides (UTF-8, UTF-16 LE/BE, UTF-32); otherwise NUL bytes mean
a binary file; otherwise strict UTF-8; otherwise charset-normalizer's guess, preferring
GB18030 (a superset of GBK/GB2312) whenever it is among the plausible decodings — short GBK
texts are also valid Big5/CP949 and the guess between them is a coin toss, while Chinese
legacy files in practice are GBK
(likewise CP1252 over its Central European look-alikes). A decoding that is mostly control characters is refused.
"""

import codecs
import re

from charset_normalizer import from_bytes

from .errors import DocumentUnreadable

_BOMS = (  # longest first: the UTF-32 LE BOM starts with the UTF-16 LE one
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_CHINESE = {"gb18030", "gbk", "gb2312", "hz"}
_CONTROLS = re.compile(r"[\x00-\x08\x0e-\x1f\x7f]")


def decode_text(content: bytes, *, what: str = "file") -> str:
    """Decode a text file's bytes; DocumentUnreadable when it is binary or no charset fits."""
    for bom, encoding in _BOMS:
        if content.startswith(bom):
            try:
                return _checked(content[len(bom):].decode(encoding), what)
            except UnicodeDecodeError as exc:
                raise DocumentUnreadable(f"the {what} starts with a {encoding} byte-order mark but is not valid {encoding}") from exc
    if b"\x00" in content:
        raise DocumentUnreadable(f"the {what} looks binary (it contains NUL bytes), not text")
    try:
        return _checked(content.decode("utf-8"), what)
    except UnicodeDecodeError:
        pass
    matches = from_bytes(content)
    encodings = [m.encoding for m in matches if not m.encoding.startswith(("utf_16", "utf_32"))]
    if not encodings:
        raise DocumentUnreadable(f"the {what} is not text in any known charset (tried UTF-8, UTF-16, GB18030 and others)")
    if any(e in _CHINESE for e in encodings):
        encoding = "gb18030"
    elif "cp1252" in encodings:  # Western European text also decodes as cp1250/iso8859-x: same tie
        encoding = "cp1252"
    else:
        encoding = encodings[0]
    try:
        return _checked(content.decode(encoding), what)
    except UnicodeDecodeError as exc:  # the detector samples; the whole file may still fail
        raise DocumentUnreadable(f"the {what} is not valid {encoding} text") from exc


def _checked(text: str, what: str) -> str:
    """Refuse decodings that are mostly control characters (binary data that happened to decode)."""
    sample = text[:65536]
    controls = len(_CONTROLS.findall(sample))
    if sample and controls > max(8, len(sample) // 100):
        raise DocumentUnreadable(f"the {what} looks binary (control characters), not text")
    return text.replace("\r\n", "\n").replace("\r", "\n")
