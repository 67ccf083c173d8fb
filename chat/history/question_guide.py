"""Follow-up questions suggested by the app's model (FastGPT's createQuestionGuide)."""

import json
import re

from chat import selectors
from chat.app_model import app_model
from chat.history.selectors import recent_records
from chat.models import App, ChatItem
from chat.value_parts import ROLE_OF_OBJ
from config.errors import BadRequest
from keys.authentication import KeyAuth
from keys.services import add_usage
from providers import chat_models
from providers.errors import ProviderError
from providers.registry import AiModel, UndeclaredModel, default_model, require_model

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
        try:
            return require_model(model_name, "llm")
        except UndeclaredModel as exc:
            raise BadRequest(f"questionGuide.model: {exc}") from None
    return app_model(app) if app is not None else default_model("llm")


def conversation_messages(items: list[ChatItem]) -> list[dict]:
    """Stored records as OpenAI chat messages (text only: the guide needs no images)."""
    return [
        {"role": ROLE_OF_OBJ[item.obj], "content": item.text}
        for item in items
        if item.obj in ROLE_OF_OBJ and item.text
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
    items = recent_records(chat=chat, rounds=QUESTION_GUIDE_ROUNDS)
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
        completion = chat_models.complete_sync(
            model=model, messages=[*messages, prompt], temperature=0.3, max_tokens=300
        )
    except ProviderError as exc:
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
