"""The JSON renderer of every enveloped answer: DRF's JSONRenderer, encoding with orjson.

DRF encodes with the standard library: ~0.5 ms of CPU for a searchTest answer of 100 hits
(87 KB), where orjson takes 0.02 ms — a tenth of the server's CPU per search
(docs/benchmarks.md, "The built-in embedding's index over sparsevec, orjson, the connection
returned last"). The text is the same JSON as DRF's:

- dicts, lists, strings (and str subclasses such as DRF's ErrorDetail), ints, floats, bools
  and None are encoded by orjson — floats in their shortest form, which may be spelled
  differently (1e-5 for 1e-05) but reads back as the same number;
- datetimes, dates, times and anything else orjson does not know (Decimal, a lazy
  translation, a NumPy array, a dataclass) go through DRF's own encoder, as before;
- U+2028 and U+2029 are escaped as DRF escapes them;
- NaN and the infinities are written null (DRF's strict mode raised, a 500);
- an indented answer (`Accept: application/json; indent=4`), and a value orjson refuses (an
  int beyond 64 bits), are left to DRF's renderer.
"""

import orjson
from rest_framework import renderers
from rest_framework.utils.encoders import JSONEncoder

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_PASSTHROUGH_DATETIME | orjson.OPT_PASSTHROUGH_DATACLASS
_drf_default = JSONEncoder().default
_LINE_SEPARATOR, _PARAGRAPH_SEPARATOR = "\u2028".encode(), "\u2029".encode()


class JSONRenderer(renderers.JSONRenderer):
    def render(self, data, accepted_media_type=None, renderer_context=None):
        indent = self.get_indent(accepted_media_type, renderer_context or {})
        if data is None or indent is not None or self.ensure_ascii or not self.compact:
            return super().render(data, accepted_media_type, renderer_context)
        try:
            text = orjson.dumps(data, default=_drf_default, option=_OPTIONS)
        except orjson.JSONEncodeError:
            return super().render(data, accepted_media_type, renderer_context)
        if _LINE_SEPARATOR in text or _PARAGRAPH_SEPARATOR in text:  # (JavaScript's line ends)
            text = text.replace(_LINE_SEPARATOR, b"\\u2028").replace(_PARAGRAPH_SEPARATOR, b"\\u2029")
        return text
