"""Writes on conversations and records: rename, pin, delete, feedback.

Every function first finds its target through chat.selectors with the caller's key, so a write
can never reach another team's (or, for an app key, another app's) conversation.
"""

from django.db import transaction

from chat import selectors
from chat.history.selectors import record_in_chat
from chat.models import Chat, ChatItem, ChatRole, ChatSource
from config.errors import BadRequest
from keys.authentication import KeyAuth


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
    record_in_chat(chat=chat, data_id=data_id).delete()


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
    item = record_in_chat(chat=chat, data_id=data_id)
    if item.obj != ChatRole.AI:
        raise BadRequest("dataId: feedback applies to AI records only.")
    item.user_good_feedback, item.user_bad_feedback = good, bad
    item.save(update_fields=["user_good_feedback", "user_bad_feedback"])
