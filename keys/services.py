"""Writes on keys: issue, rotate, revoke, and the cheap bookkeeping done per request."""

import threading
from datetime import datetime, timedelta

from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import F, Q
from django.utils import timezone

from keys.hashing import display_prefix, generate_key, hash_key
from config.errors import UsageCapReached
from keys.models import ApiKey, IssueFormToken, Team


def create_api_key(
    *,
    team: Team,
    app=None,
    name: str = "Api Key",
    expires_at: datetime | None = None,
    max_usage_points: int = -1,
    usage_points: int = 0,
) -> tuple[ApiKey, str]:
    """Issue a key; returns the row and the plaintext, which the caller shows once."""
    if app is not None and app.team_id != team.pk:
        raise ValueError("The app belongs to another team.")
    plaintext = generate_key()
    key = ApiKey.objects.create(
        team=team,
        app=app,
        name=name,
        prefix=display_prefix(plaintext),
        key_hash=hash_key(plaintext),
        expires_at=expires_at,
        max_usage_points=max_usage_points,
        usage_points=usage_points,
    )
    return key, plaintext


def default_grace() -> timedelta:
    return timedelta(hours=settings.API_KEY_ROTATION_GRACE_HOURS)


@transaction.atomic
def rotate_api_key(*, key: ApiKey, grace: timedelta | None = None) -> tuple[ApiKey, str]:
    """Replace ``key`` by a new one with the same scope and limits.

    The old key keeps working for ``grace`` (default from settings; zero revokes it at once).
    Usage points carry over, so rotating never resets a usage cap.
    """
    key = ApiKey.objects.select_for_update(of=("self",)).select_related("team", "app").get(pk=key.pk)
    now = timezone.now()
    if key.revoked_at is not None and key.revoked_at <= now:
        raise ValueError("A revoked key cannot be rotated.")
    if key.revoked_at is not None:
        # Rotating it again would restart its grace and leave the first replacement linked
        # to nothing: rotate the replacement instead.
        raise ValueError("This key is already rotating out; rotate its replacement instead.")
    new_key, plaintext = create_api_key(
        team=key.team,
        app=key.app,
        name=key.name,
        expires_at=key.expires_at,
        max_usage_points=key.max_usage_points,
        usage_points=key.usage_points,
    )
    end = now + (default_grace() if grace is None else grace)
    key.revoked_at = min(end, key.revoked_at) if key.revoked_at else end
    key.replaced_by = new_key
    key.save(update_fields=["revoked_at", "replaced_by"])
    return new_key, plaintext


def claim_issue_token(*, token: str) -> bool:
    """Mark an admin form's one-time token used: True the first time, False ever after (also
    when two submissions race: the token is the primary key)."""
    try:
        with transaction.atomic():
            IssueFormToken.objects.create(token=token)
    except IntegrityError:
        return False
    return True


def revoke_api_key(*, key: ApiKey) -> ApiKey:
    """Revoke at once. Irreversible: a revoked key never works again."""
    now = timezone.now()
    ApiKey.objects.filter(pk=key.pk).filter(Q(revoked_at__isnull=True) | Q(revoked_at__gt=now)).update(
        revoked_at=now
    )
    key.refresh_from_db(fields=["revoked_at"])
    return key


# This process's latest claim on writing each key's last use (by key hash): the moment it was
# claimed for. Requests of one key that read the same old `last_used_at` at once (a client's
# burst) then write it once per process, not once each — each such write a conditional UPDATE
# that finds nothing left to do, and on the chat turn's event-loop path a thread hop.
_last_used_claims: dict[str, datetime] = {}
_claims_lock = threading.Lock()


def last_used_due(*, key: ApiKey, now: datetime) -> bool:
    """Whether a write of the key's last use is due at ``now``: the stored one is older than
    the resolution, and this process has claimed no write within it but at ``now`` itself."""
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION)
    if key.last_used_at is not None and now - key.last_used_at < resolution:
        return False
    claimed = _last_used_claims.get(key.key_hash)
    # abs(): a claim "ahead" of ``now`` (the clock set back) also lapses after the resolution.
    return claimed is None or claimed == now or abs(now - claimed) >= resolution


def claim_last_used(*, key: ApiKey, now: datetime) -> bool:
    """`last_used_due`, and if so the write claimed for ``now``: until the resolution has
    passed, only a request judged at that same moment finds it due in this process."""
    with _claims_lock:
        if not last_used_due(key=key, now=now):
            return False
        _last_used_claims[key.key_hash] = now
        return True


def touch_last_used(*, key: ApiKey, now: datetime) -> None:
    """Record use, writing at most once per API_KEY_LAST_USED_RESOLUTION seconds per key."""
    if not claim_last_used(key=key, now=now):
        return
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION)
    # The condition makes concurrent requests of several processes write once, not each.
    ApiKey.objects.filter(pk=key.pk).filter(
        Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - resolution)
    ).update(last_used_at=now)
    key.last_used_at = now


def usage_account(*, key: ApiKey) -> ApiKey:
    """The row that counts ``key``'s spending: the key itself, or, for a key rotated out (and
    still working through its grace), its newest replacement — so the old and the new key
    share one count and one cap. No query unless the key was rotated."""
    account = key
    for _ in range(100):  # a chain of rotations; bounded so a bad row cannot loop forever
        if account.replaced_by_id is None:
            return account
        account = ApiKey.objects.get(pk=account.replaced_by_id)
    return account


def reserve_usage(*, key: ApiKey, points: int) -> int:
    """Reserve ``points`` before a model call: one conditional update, so concurrent calls
    cannot all pass a cap that only one of them fits under. Returns the points reserved (0 for
    a key without a cap); UsageCapReached when the cap is already reached."""
    account = usage_account(key=key)
    if account.max_usage_points < 0:
        return 0
    points = max(points, 1)
    reserved = ApiKey.objects.filter(
        pk=account.pk, usage_points__lt=F("max_usage_points")
    ).update(usage_points=F("usage_points") + points)
    if not reserved:
        raise UsageCapReached()
    return points


_ADD_USAGE = f"UPDATE {ApiKey._meta.db_table} SET usage_points = usage_points + %s WHERE id = %s"


def add_usage(*, key: ApiKey, points: int, reserved: int = 0) -> None:
    """Count spent points atomically (concurrent requests never lose an increment), less what
    was reserved for this call (a failed call gives its reservation back)."""
    delta = max(points, 0) - reserved
    if delta:  # in SQL: every searchTest runs it; the ORM took longer to build it than to run it
        with connection.cursor() as cursor:
            cursor.execute(_ADD_USAGE, [delta, usage_account(key=key).pk])
