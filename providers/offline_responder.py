"""The built-in offline responder: what answers when no language model is configured.

It is not a language model and never pretends to be one. It says plainly that no model is
configured and how to declare one; it invents nothing and does not echo the question back.
"""

NO_MODEL_ANSWER = (
    "No language model is configured on this server, so this app cannot answer questions yet. "
    "An operator can declare an OpenAI-compatible model in AI_MODELS (see docs/configuration.md). "
    "(This reply comes from the built-in offline responder.)"
)


def answer(messages: list[dict]) -> str:
    """The responder's full answer to a conversation."""
    return NO_MODEL_ANSWER


def pieces(text: str) -> list[str]:
    """Split an answer into stream deltas (word by word, spaces kept)."""
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]]
