"""Reads of teams and keys."""

from django.db import connection
from django.db.models import QuerySet

from config.raw_rows import columns, model_instance
from keys.hashing import hash_key
from keys.models import ApiKey, Team

_KEY_FIELDS = ApiKey._meta.concrete_fields
_KEY_BY_HASH = f"SELECT {columns('k', _KEY_FIELDS)} FROM {ApiKey._meta.db_table} k WHERE k.key_hash = %s"


def key_for_secret(*, key: str) -> ApiKey | None:
    """The stored key whose hash matches ``key``, or None. One indexed query: an exact match
    on the unique hash is the comparison (what is compared is a hash, not the secret).

    In SQL: every authenticated request runs it, and the ORM took longer to build the
    statement than the database to answer it (config/raw_rows.py)."""
    with connection.cursor() as cursor:
        cursor.execute(_KEY_BY_HASH, [hash_key(key)])
        row = cursor.fetchone()
    return None if row is None else model_instance(ApiKey, _KEY_FIELDS, row)


def team_by_id_or_name(*, identifier: str) -> Team | None:
    return Team.objects.filter(id=identifier).first() or Team.objects.filter(name=identifier).first()


def key_by_id_or_prefix(*, identifier: str) -> ApiKey | None:
    """A key named by its numeric id or its display prefix (as `list_api_keys` prints them)."""
    if identifier.isdigit():
        return ApiKey.objects.filter(pk=int(identifier)).first()
    matches = list(ApiKey.objects.filter(prefix=identifier)[:2])
    return matches[0] if len(matches) == 1 else None


def keys_of(*, team: Team | None = None) -> QuerySet[ApiKey]:
    keys = ApiKey.objects.select_related("team", "app").order_by("team__name", "created_at")
    return keys.filter(team=team) if team is not None else keys
