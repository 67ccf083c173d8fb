"""Token counts when a provider gives none: an estimate, and reported as one.

No tokenizer is bundled (tiktoken fetches its tables from the network on first use, which this
server never does). The estimate counts each CJK character as a token and every ~4 other
characters as one, which is close for English and Chinese text with GPT-style tokenizers.
"""

import math
import re

_CJK = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff]")
MESSAGE_OVERHEAD = 4  # role and separators, as OpenAI's own counting adds per message


def estimate_text(text: str) -> int:
    cjk = len(_CJK.findall(text))
    rest = len(text) - cjk - text.count(" ")
    return cjk + math.ceil(max(rest, 0) / 4)


def estimate_messages(messages: list[dict]) -> int:
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, list):
            content = " ".join(part.get("text", "") for part in content if isinstance(part, dict))
        total += MESSAGE_OVERHEAD + estimate_text(content or "")
    return total
