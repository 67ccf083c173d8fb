"""Which declared LLM an app runs with."""

from chat.models import App
from config.errors import UpstreamError
from providers.registry import AiModel, UndeclaredModel, default_model, require_model


def app_model(app: App) -> AiModel:
    """The app's own model, or the default LLM when it names none.

    An app naming a model that is not configured is an error, never a silent switch to
    another model (which could send its conversations to another provider).
    """
    if not app.model:
        return default_model("llm")
    try:
        return require_model(app.model, "llm")
    except UndeclaredModel:
        raise UpstreamError(f"The app's model '{app.model}' is not configured on this server.") from None


def shown_model_name(app: App) -> str:
    """The model name to show for an app, as configured (never fails on an undeclared one)."""
    return app.model or default_model("llm").name
