"""What the model is sent: the app's system prompt, the stored history and the request's
messages, as OpenAI messages (conversions of parts live in chat/value_parts.py)."""

import re

from chat.models import ChatItem, ChatRole
from chat.value_parts import ROLE_OF_OBJ, to_provider_content, value_to_provider_content

_VARIABLE = re.compile(r"\{\{\s*([\w.\-]+)\s*\}\}")


def substitute(template: str, variables: dict) -> str:
    """Replace `{{name}}` by the variable's value; unknown names are left as written."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        return str(variables[name]) if name in variables else match.group(0)

    return _VARIABLE.sub(value, template)


def history_messages(items: list[ChatItem]) -> list[dict]:
    """Stored records → provider messages. Failed answers (no text) are left out."""
    messages = []
    for item in items:
        content = value_to_provider_content(item.value)
        if item.obj == ChatRole.AI and not content:
            continue
        messages.append({"role": ROLE_OF_OBJ[item.obj], "content": content})
    return messages


def request_messages(messages: list[dict]) -> list[dict]:
    """The request's own messages, as the provider gets them."""
    return [{"role": m["role"], "content": to_provider_content(m.get("content"))} for m in messages]


def with_system_prompt(system_prompt: str, variables: dict, messages: list[dict]) -> list[dict]:
    """Put the app's system prompt (variables substituted) before the conversation, and any
    system messages of the conversation right after it (FastGPT puts System items first)."""
    system = [m for m in messages if m["role"] == "system"]
    rest = [m for m in messages if m["role"] != "system"]
    prompt = substitute(system_prompt, variables).strip()
    head = [{"role": "system", "content": prompt}] if prompt else []
    return head + system + rest
