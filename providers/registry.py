"""The models this server may call, declared in configuration.

`AI_MODELS` (JSON, in the environment) or `AI_MODELS_FILE` (a JSON file) lists them:

    [{"name": "gpt-4o-mini", "type": "llm", "baseUrl": "https://host/v1", "apiKey": "sk-…",
      "maxContext": 128000, "maxResponse": 4096},
     {"name": "text-embedding-3-small", "type": "embedding", "baseUrl": "…", "dimensions": 1536}]

Two built-in models need no provider, so the server works offline: an LLM stand-in that
answers from the knowledge base (it is not a language model) and a lexical embedding (feature
hashing of tokens; it matches words, not meaning). Both say so in their names.
"""

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

BUILTIN_LLM = "builtin-offline-responder"
BUILTIN_EMBEDDING = "builtin-lexical-embedding"
MODEL_TYPES = ("llm", "embedding", "rerank")


@dataclass(frozen=True)
class AiModel:
    name: str
    type: str
    base_url: str = ""  # empty: a built-in model, run in-process
    api_key: str = ""
    max_context: int = 16000
    max_response: int = 4000
    dimensions: int = 0
    timeout: float = 60.0

    @property
    def is_builtin(self) -> bool:
        return not self.base_url


_BUILTINS = (
    AiModel(name=BUILTIN_LLM, type="llm", max_context=16000, max_response=4000),
    AiModel(name=BUILTIN_EMBEDDING, type="embedding", max_context=512, dimensions=512),
)


def _parse(entry: dict) -> AiModel:
    try:
        model = AiModel(
            name=str(entry["name"]),
            type=str(entry.get("type", "llm")),
            base_url=str(entry["baseUrl"]).rstrip("/"),
            api_key=str(entry.get("apiKey", "")),
            max_context=int(entry.get("maxContext", 16000)),
            max_response=int(entry.get("maxResponse", 4000)),
            dimensions=int(entry.get("dimensions", 0)),
            timeout=float(entry.get("timeout", 60)),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ImproperlyConfigured(f"AI_MODELS: bad entry {entry!r}: {exc}") from exc
    if model.type not in MODEL_TYPES:
        raise ImproperlyConfigured(f"AI_MODELS: {model.name}: type must be one of {MODEL_TYPES}")
    return model


@cache
def _declared(raw: str, path: str) -> dict[str, AiModel]:
    text = Path(path).read_text() if path else raw
    entries = json.loads(text) if text.strip() else []
    models = {m.name: m for m in _BUILTINS}
    models.update({m.name: m for m in map(_parse, entries)})
    return models


def all_models() -> dict[str, AiModel]:
    return _declared(settings.AI_MODELS, settings.AI_MODELS_FILE)


def get_model(name: str) -> AiModel | None:
    """The declared model ``name`` of any type, or None (for display: what a row names)."""
    return all_models().get(name)


class UndeclaredModel(LookupError):
    """A name that is not a declared model of the wanted type. Callers map it onto their own
    answer (a 400 naming the field, a 502 for an app's misconfigured model)."""

    def __init__(self, name: str, model_type: str):
        self.name, self.model_type = name, model_type
        super().__init__(f"'{name}' is not a configured {model_type} model.")


def require_model(name: str, model_type: str) -> AiModel:
    """The declared model ``name`` of type ``model_type``; UndeclaredModel if there is none
    (unknown name, or a model of another type). The one check every caller makes."""
    model = all_models().get(name)
    if model is None or model.type != model_type:
        raise UndeclaredModel(name, model_type)
    return model


def default_model(model_type: str) -> AiModel:
    """The configured default of a type, else the first declared one, else the built-in."""
    wanted = {"llm": settings.DEFAULT_LLM_MODEL, "embedding": settings.DEFAULT_EMBEDDING_MODEL}
    name = wanted.get(model_type, "")
    models = all_models()
    if name:
        if name not in models:
            raise ImproperlyConfigured(f"Default {model_type} model {name!r} is not declared.")
        return models[name]
    declared = [m for m in models.values() if m.type == model_type and not m.is_builtin]
    if declared:
        return declared[0]
    return next(m for m in models.values() if m.type == model_type)
