"""Writes on conversations and records (rename, pin, delete, feedback) and the question guide.

Every function first finds its target through chat.selectors with the caller's key, so a write
can never reach another team's (or, for an app key, another app's) conversation.
"""

import json
import re

from django.db import transaction

from chat import llm, selectors
from chat.models import App, Chat, ChatItem, ChatRole, ChatSource
from providers.registry import AiModel, default_model, get_model
from config.errors import BadRequest
from keys.authentication import KeyAuth
from keys.services import add_usage


def update_history(
    *,
    auth: KeyAuth,
    app_id: str,
    chat_id: str,
    custom_title: str | None = None,
    top: bool | None = None,
) -> None:
    """Rename (``custom_title``) and/or pin (``top``) a conversation; None leaves it as is.

    `updated_at` is not touched: it is the time of the last turn, which renaming doesn't change.
    """
    chat = selectors.chat_for_key(auth=auth, app_id=app_id, chat_id=chat_id)
    changes = {"custom_title": custom_title, "top": top}
    fields = [name for name, value in changes.items() if value is not None]
    for name in fields:
        setattr(chat, name, changes[name])
    chat.save(update_fields=fields)


def delete_history(*, auth: KeyAuth, app_id: str, chat_id: str) -> None:
    """Delete a conversation and all its records."""
    selectors.chat_for_key(auth=auth, app_id=app_id, chat_id=chat_id).delete()


@transaction.atomic
def clear_api_histories(*, auth: KeyAuth, app_id: str) -> int:
    """Delete the app's conversations created through the API (as FastGPT documents: chats
    from the web UI, share links or team spaces stay). Returns how many were deleted."""
    app = selectors.app_for_key(auth=auth, app_id=app_id)
    chats = Chat.objects.filter(app=app, source=ChatSource.API)
    # Records first in one statement; then the chats, which no longer have anything to cascade.
    ChatItem.objects.filter(chat__in=chats).delete()
    deleted, _ = chats.delete()
    return deleted


def delete_record(*, auth: KeyAuth, app_id: str, chat_id: str, data_id: str) -> None:
    """Delete one record (FastGPT's `contentId`) of a conversation."""
    chat = selectors.chat_for_key(auth=auth, app_id=app_id, chat_id=chat_id)
    selectors.record_in_chat(chat=chat, data_id=data_id).delete()


def set_user_feedback(
    *,
    auth: KeyAuth,
    app_id: str,
    chat_id: str,
    data_id: str,
    good: str | None,
    bad: str | None,
) -> None:
    """Set the end user's 👍/👎 on an answer. As in FastGPT, a feedback left out (None) is
    cleared: sending only `userGoodFeedback` sets it and removes any bad feedback."""
    chat = selectors.chat_for_key(auth=auth, app_id=app_id, chat_id=chat_id)
    item = selectors.record_in_chat(chat=chat, data_id=data_id)
    if item.obj != ChatRole.AI:
        raise BadRequest("dataId: feedback applies to AI records only.")
    item.user_good_feedback, item.user_bad_feedback = good, bad
    item.save(update_fields=["user_good_feedback", "user_bad_feedback"])


# --- question guide -------------------------------------------------------------------------

QUESTION_GUIDE_ROUNDS = 6
QUESTION_GUIDE_MAX = 3
QUESTION_GUIDE_PROMPT = (
    "You are helping the user continue this conversation. Suggest three short questions the "
    "user is likely to ask next, in the language of the conversation, each under 20 words. "
    'Reply with a JSON array of strings only, e.g. ["…", "…", "…"].'
)


def question_guide_model(*, app: App | None, model_name: str | None) -> AiModel:
    """The model asked: the one named in the request, else the app's, else the default LLM."""
    if model_name:
        model = get_model(model_name)
        if model is None or model.type != "llm":
            raise BadRequest(f"questionGuide.model: '{model_name}' is not a configured llm model.")
        return model
    return selectors.app_model(app) if app is not None else default_model("llm")


def conversation_messages(items: list[ChatItem]) -> list[dict]:
    """Stored records as OpenAI chat messages (text only: the guide needs no images)."""
    roles = {ChatRole.HUMAN: "user", ChatRole.AI: "assistant", ChatRole.SYSTEM: "system"}
    return [
        {"role": roles[item.obj], "content": item.text}
        for item in items
        if item.obj in roles and item.text
    ]


def create_question_guide(
    *,
    auth: KeyAuth,
    app_id: str,
    chat_id: str,
    model_name: str | None = None,
    custom_prompt: str | None = None,
) -> list[str]:
    """Up to 3 follow-up questions for a stored conversation, from its last 6 rounds."""
    chat = selectors.chat_for_key(auth=auth, app_id=app_id, chat_id=chat_id)
    items = selectors.recent_records(chat=chat, rounds=QUESTION_GUIDE_ROUNDS)
    return suggest_questions(
        auth=auth,
        model=question_guide_model(app=chat.app, model_name=model_name),
        messages=conversation_messages(items),
        custom_prompt=custom_prompt,
    )


def create_question_guide_from_messages(
    *, auth: KeyAuth, app_id: str | None, messages: list[dict]
) -> list[str]:
    """The older endpoint: the client sends the conversation itself (`messages`).

    ``app_id`` picks the app's model when given; an app key (or a legacy
    `fastgpt-<key>-<appId>` key) defaults to its app, a global key without one to the default
    model.
    """
    app_id = app_id or auth.app_id
    app = selectors.app_for_key(auth=auth, app_id=app_id) if app_id else None
    return suggest_questions(
        auth=auth,
        model=question_guide_model(app=app, model_name=None),
        messages=messages[-QUESTION_GUIDE_ROUNDS * 2 :],
    )


def suggest_questions(
    *, auth: KeyAuth, model: AiModel, messages: list[dict], custom_prompt: str | None = None
) -> list[str]:
    """Ask ``model`` for follow-up questions; the tokens count against the key's usage.

    The built-in offline responder is not a language model, so it suggests nothing rather
    than invent text. A provider failure is UpstreamError (502) or UpstreamTimeout (504).
    """
    if model.is_builtin or not messages:
        return []
    prompt = {"role": "user", "content": custom_prompt or QUESTION_GUIDE_PROMPT}
    try:
        completion = llm.complete_sync(
            model=model, messages=[*messages, prompt], temperature=0.3, max_tokens=300
        )
    except llm.ProviderError as exc:
        raise exc.as_api_error("Question guide: ") from exc
    add_usage(key=auth.key, points=completion.usage.total_tokens)
    return parse_questions(completion.text)


_NUMBERING = re.compile(r"^\s*(?:[-*•]|\d+[.)、:]|\(\d+\))\s*")


def parse_questions(text: str) -> list[str]:
    """Up to 3 questions from a model's answer: a JSON array (possibly inside other text or a
    code fence), else one question per line with any numbering or bullet removed."""
    start, end = text.find("["), text.rfind("]")
    if start != -1 and end > start:
        try:
            parsed = json.loads(text[start : end + 1])
        except ValueError:
            parsed = None
        if isinstance(parsed, list):
            questions = [str(q).strip() for q in parsed if isinstance(q, (str, int, float))]
            return [q for q in questions if q][:QUESTION_GUIDE_MAX]
    lines = (_NUMBERING.sub("", line).strip().strip('"') for line in text.splitlines())
    return [line for line in lines if line and not line.startswith("```")][:QUESTION_GUIDE_MAX]
