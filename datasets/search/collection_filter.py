"""Which collections a search may read: never a forbidden one, and those `collectionFilterMatch`
selects by tags and creation time.

    {"tags": {"$and": ["tag1", "tag2"], "$or": ["tag3", null]},
     "createTime": {"$gte": "2024-01-01 00:00", "$lte": "2024-12-31T23:59:59Z"}}

- `tags.$and`: the collection has every tag listed. `[null]` alone selects untagged
  collections; `null` beside tag names selects nothing (no collection is both).
- `tags.$or`: the collection has at least one listed tag, or (with `null`) has no tag.
- Both given: both must hold (FastGPT uses `$and` and ignores `$or`; we apply both).
- `createTime`: the collection was created at or after `$gte` and at or before `$lte`. A time
  without a zone is in the server's TIME_ZONE; a date alone means its midnight.
- The tag and time conditions combine with AND. An empty list or object is no condition.
"""

from dataclasses import dataclass
from datetime import datetime, time

from django.utils import timezone
from django.utils.dateparse import parse_date, parse_datetime

from datasets.models import Collection, CollectionType


class FilterInvalid(ValueError):
    """The filter's shape is wrong; the message names the part (e.g. `tags.$and`)."""


@dataclass(frozen=True)
class CollectionMatch:
    tags_all: tuple[str | None, ...] = ()
    tags_any: tuple[str | None, ...] = ()
    created_from: datetime | None = None
    created_to: datetime | None = None

    @property
    def is_empty(self) -> bool:
        return not (self.tags_all or self.tags_any or self.created_from or self.created_to)

    def accepts(self, *, tags: list, created_at: datetime) -> bool:
        names = {t for t in tags if isinstance(t, str)} if isinstance(tags, list) else set()
        if self.tags_all:
            wanted = set(self.tags_all)
            if None in wanted:
                if len(wanted) > 1 or names:
                    return False
            elif not wanted <= names:
                return False
        if self.tags_any:
            any_names = {t for t in self.tags_any if t is not None}
            if not (names & any_names or (None in self.tags_any and not names)):
                return False
        if self.created_from is not None and created_at < self.created_from:
            return False
        if self.created_to is not None and created_at > self.created_to:
            return False
        return True


def parse_match(raw: dict) -> CollectionMatch:
    """A CollectionMatch from the request's object; raises FilterInvalid naming the bad part."""
    if not isinstance(raw, dict):
        raise FilterInvalid("must be an object (or a JSON string of one).")
    unknown = set(raw) - {"tags", "createTime"}
    if unknown:
        raise FilterInvalid(f"unknown key(s) {sorted(unknown)}; use tags and createTime.")
    tags = raw.get("tags") or {}
    if not isinstance(tags, dict) or set(tags) - {"$and", "$or"}:
        raise FilterInvalid("tags must be an object with $and and/or $or.")
    created = raw.get("createTime") or {}
    if not isinstance(created, dict) or set(created) - {"$gte", "$lte"}:
        raise FilterInvalid("createTime must be an object with $gte and/or $lte.")
    return CollectionMatch(
        tags_all=_tag_list(tags.get("$and"), "tags.$and"),
        tags_any=_tag_list(tags.get("$or"), "tags.$or"),
        created_from=_moment(created.get("$gte"), "createTime.$gte"),
        created_to=_moment(created.get("$lte"), "createTime.$lte"),
    )


def _tag_list(value, name: str) -> tuple[str | None, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(t is None or isinstance(t, str) for t in value):
        raise FilterInvalid(f"{name} must be a list of tag names (or null for untagged).")
    return tuple(dict.fromkeys(value))


def _moment(value, name: str) -> datetime | None:
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise FilterInvalid(f"{name} must be a date-time string such as '2024-05-01 08:00'.")
    text = value.strip()
    try:
        moment = parse_datetime(text) or parse_datetime(text.replace(" ", "T", 1))
        if moment is None:
            day = parse_date(text)
            moment = datetime.combine(day, time.min) if day else None
    except ValueError:
        moment = None
    if moment is None:
        raise FilterInvalid(f"{name}: {value!r} is not a date-time such as '2024-05-01 08:00'.")
    if timezone.is_naive(moment):
        moment = timezone.make_aware(moment)
    return moment


def searchable_collections(*, dataset_ids: list[str], match: CollectionMatch | None) -> list[str] | None:
    """The ids of the collections a search may read, or None when it may read all of them.

    None is the common case (nothing forbidden, no filter): the backends then filter by dataset
    only. An empty list means nothing is searchable."""
    collections = Collection.objects.filter(dataset_id__in=dataset_ids).exclude(type=CollectionType.FOLDER)
    if match is None or match.is_empty:
        if not collections.filter(forbid=True).exists():
            return None
        return list(collections.filter(forbid=False).values_list("id", flat=True))
    rows = collections.filter(forbid=False).values_list("id", "tags", "created_at")
    return [pk for pk, tags, created_at in rows if match.accepts(tags=tags, created_at=created_at)]
