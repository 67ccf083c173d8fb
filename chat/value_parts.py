"""FastGPT's stored message parts (`value`) and OpenAI message content, read and converted in
one place.

FastGPT stores a message as typed parts: text as {"type": "text", "text": {"content"}}, an
image as {"type": "file", "file": {"type": "image", "url"}}, a file as {"type": "file", "file":
{"type": "file", "name", "url"}}, and a run may add "reasoning" and "tool" parts. OpenAI
content is a string or parts: text, image_url, file_url. Stored rows are read leniently (a part
may be malformed); request content has been validated by the completion serializer.
"""

from dataclasses import dataclass, field

# FastGPT's record roles (ChatRole values) and OpenAI's message roles.
ROLE_OF_OBJ = {"Human": "user", "AI": "assistant", "System": "system"}
OBJ_OF_ROLE = {"user": "Human", "assistant": "AI", "system": "System"}


# --- OpenAI content -------------------------------------------------------------------------


def text_of(content) -> str:
    """The text of an OpenAI message content (a string, or parts; non-text parts skipped)."""
    if isinstance(content, str):
        return content
    return "\n".join(
        str(part.get("text", ""))
        for part in content or []
        if isinstance(part, dict) and part.get("type") == "text"
    )


def _image_url(part: dict) -> str:
    image = part["image_url"]
    return image["url"] if isinstance(image, dict) else image


def to_value(content) -> list[dict]:
    """OpenAI content → FastGPT's stored value parts."""
    if isinstance(content, str):
        return [{"type": "text", "text": {"content": content}}]
    value = []
    for part in content:
        if part["type"] == "text":
            value.append({"type": "text", "text": {"content": part["text"]}})
        elif part["type"] == "image_url":
            value.append({"type": "file", "file": {"type": "image", "name": "", "url": _image_url(part)}})
        else:  # file_url
            value.append({"type": "file", "file": {"type": "file", "name": part.get("name", ""), "url": part["url"]}})
    return value


def _file_mention(name: str, url: str) -> str:
    """How a file reaches a provider: no provider reads `file_url`, so a text mention."""
    return f"[file {name}]({url})"


def _provider_content(parts: list[dict]):
    """Parts as a provider accepts them: parts when an image is among them, else plain text."""
    if any(p["type"] == "image_url" for p in parts):
        return parts
    return "\n".join(p["text"] for p in parts)


def to_provider_content(content):
    """OpenAI content as a provider accepts it: files become a text mention; images stay."""
    if isinstance(content, str) or content is None:
        return content or ""
    parts = []
    for part in content:
        if part["type"] == "file_url":
            parts.append({"type": "text", "text": _file_mention(part.get("name", ""), part["url"])})
        else:
            parts.append(part)
    return _provider_content(parts)


# --- stored value parts ---------------------------------------------------------------------


def value_text(value) -> str:
    """The text parts of a stored `value`, joined (a part without a type is text)."""
    if not isinstance(value, list):
        return ""
    return "\n".join(
        part.get("text", {}).get("content", "")
        for part in value
        if isinstance(part, dict) and part.get("type", "text") == "text"
    )


def value_to_provider_content(value: list[dict]):
    """Stored value parts → provider content (string, or parts when images are present)."""
    parts = []
    for part in value:
        if part.get("type") == "text":
            parts.append({"type": "text", "text": part["text"]["content"]})
        elif part.get("type") == "file" and part["file"].get("type") == "image":
            parts.append({"type": "image_url", "image_url": {"url": part["file"]["url"]}})
        elif part.get("type") == "file":
            parts.append({"type": "text", "text": _file_mention(part["file"].get("name", ""), part["file"]["url"])})
    return _provider_content(parts)


@dataclass
class FileRef:
    is_image: bool
    name: str
    url: str  # only http(s) links; anything else (e.g. "javascript:") is left out


@dataclass
class ReadParts:
    """A stored `value` sorted by kind, for display."""

    texts: list[str] = field(default_factory=list)
    reasoning: list[str] = field(default_factory=list)
    files: list[FileRef] = field(default_factory=list)
    tools: list[dict] = field(default_factory=list)
    other: list[str] = field(default_factory=list)  # the types of parts of no known kind


def read_parts(value) -> ReadParts:
    """Every part of a stored `value` by kind; malformed parts are skipped."""
    read = ReadParts()
    for part in value if isinstance(value, list) else []:
        if not isinstance(part, dict):
            continue
        kind = part.get("type", "text")
        if kind == "text":
            read.texts.append((part.get("text") or {}).get("content", ""))
        elif kind == "reasoning":
            read.reasoning.append((part.get("reasoning") or {}).get("content", ""))
        elif kind == "file":
            file = part.get("file") or {}
            url = str(file.get("url", ""))
            read.files.append(
                FileRef(
                    is_image=file.get("type") == "image",
                    name=file.get("name") or url,
                    url=url if url.startswith(("http://", "https://")) else "",
                )
            )
        elif kind == "tool":
            read.tools.append(part.get("tools") or part.get("tool") or {})
        else:
            read.other.append(kind)
    return read
