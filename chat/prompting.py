"""From a request and stored history to what the model is sent, and to what is stored.

FastGPT stores a message as typed parts (`value`): text as {"type": "text", "text":
{"content"}}, an image as {"type": "file", "file": {"type": "image", "url"}}. Providers get
OpenAI messages. These functions convert between the two.
"""

import re

from chat.models import ChatItem, ChatRole

_VARIABLE = re.compile(r"\{\{\s*([\w.\-]+)\s*\}\}")
_ROLE_OF = {ChatRole.HUMAN: "user", ChatRole.AI: "assistant", ChatRole.SYSTEM: "system"}
PREVIEW_CHARS = 100


def substitute(template: str, variables: dict) -> str:
    """Replace `{{name}}` by the variable's value; unknown names are left as written."""

    def value(match: re.Match) -> str:
        name = match.group(1)
        return str(variables[name]) if name in variables else match.group(0)

    return _VARIABLE.sub(value, template)


def text_of(content) -> str:
    """The text of an OpenAI message content (a string, or parts)."""
    if isinstance(content, str):
        return content
    return "\n".join(part["text"] for part in content or [] if part.get("type") == "text")


def to_value(content) -> list[dict]:
    """OpenAI content → FastGPT's stored value parts."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"content": content}}]
    value = []
    for part in content:
        if part["type"] == "text":
            value.append({"type": "text", "text": {"content": part["text"]}})
        elif part["type"] == "image_url":
            image = part["image_url"]
            url = image["url"] if isinstance(image, dict) else image
            value.append({"type": "file", "file": {"type": "image", "name": "", "url": url}})
        else:  # file_url
            value.append({"type": "file", "file": {"type": "file", "name": part.get("name", ""), "url": part["url"]}})
    return value


def to_provider_content(content):
    """OpenAI content as a provider accepts it: files become a text mention (no provider
    reads `file_url`); images stay image parts."""
    if isinstance(content, str) or content is None:
        return content or ""
    parts = []
    for part in content:
        if part["type"] == "file_url":
            parts.append({"type": "text", "text": f"[file {part.get('name', '')}]({part['url']})"})
        else:
            parts.append(part)
    return parts if any(p["type"] == "image_url" for p in parts) else "\n".join(p["text"] for p in parts)


def value_to_provider_content(value: list[dict]):
    """Stored value parts → provider content (string, or parts when images are present)."""
    parts = []
    for part in value:
        if part.get("type") == "text":
            parts.append({"type": "text", "text": part["text"]["content"]})
        elif part.get("type") == "file" and part["file"].get("type") == "image":
            parts.append({"type": "image_url", "image_url": {"url": part["file"]["url"]}})
        elif part.get("type") == "file":
            parts.append({"type": "text", "text": f"[file {part['file'].get('name', '')}]({part['file']['url']})"})
    if any(p["type"] == "image_url" for p in parts):
        return parts
    return "\n".join(p["text"] for p in parts)


def history_messages(items: list[ChatItem]) -> list[dict]:
    """Stored records → provider messages. Failed answers (no text) are left out."""
    messages = []
    for item in items:
        content = value_to_provider_content(item.value)
        if item.obj == ChatRole.AI and not content:
            continue
        messages.append({"role": _ROLE_OF[item.obj], "content": content})
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


def history_preview(messages: list[dict]) -> list[dict]:
    """FastGPT's `historyPreview`: each message's role and the start of its text."""
    obj_of = {"user": "Human", "assistant": "AI", "system": "System"}
    return [
        {"obj": obj_of.get(m["role"], "Human"), "value": text_of(m["content"])[:PREVIEW_CHARS]}
        for m in messages
    ]
