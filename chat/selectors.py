"""Which app and conversation a key may touch: the access-scope lookups both halves of chat
(completions and history) use.

Scope rules (the same for every chat endpoint):
- an app key reaches only its own app; any other `appId` is "not found" (never "forbidden",
  which would reveal that the app exists);
- a global key reaches every app of its team;
- another team's app, or a chat that is not in the named app, is "not found" with the same
  body as an id that exists nowhere.
"""

from chat.models import App, Chat
from config.errors import AppNotFound, ChatNotFound
from keys.authentication import KeyAuth


def app_for_key(*, auth: KeyAuth, app_id: str) -> App:
    """The app ``app_id`` if this key may use it, else AppNotFound. At most one query."""
    if auth.key.app_id is not None and auth.key.app_id != app_id:
        raise AppNotFound()  # an app key outside its app: same answer as an unknown app
    app = App.objects.filter(pk=app_id, team_id=auth.team_id).first()
    if app is None:
        raise AppNotFound()
    return app


def find_chat(*, app: App, chat_id: str) -> Chat | None:
    """The conversation ``chat_id`` of ``app``, or None (a new one, or one of another app)."""
    return Chat.objects.filter(app=app, chat_id=chat_id).first() if chat_id else None


def chat_in_app(*, app: App, chat_id: str) -> Chat:
    """The conversation ``chat_id`` of ``app``; a chat of another app is simply not found."""
    chat = find_chat(app=app, chat_id=chat_id)
    if chat is None:
        raise ChatNotFound()
    chat.app = app  # already loaded: spare callers a query
    return chat


def chat_for_key(*, auth: KeyAuth, app_id: str, chat_id: str) -> Chat:
    """The conversation ``chat_id`` of app ``app_id``, if this key may use that app."""
    return chat_in_app(app=app_for_key(auth=auth, app_id=app_id), chat_id=chat_id)
