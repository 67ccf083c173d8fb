"""Teams and their API keys. A key is stored as a SHA-256 hash; the plaintext is never kept."""

from django.db import models
from django.utils import timezone

from config.ids import new_object_id


class Team(models.Model):
    """The tenant: every app, chat, dataset and key belongs to exactly one team."""

    id = models.CharField(primary_key=True, max_length=24, default=new_object_id, editable=False)
    name = models.CharField(max_length=100, unique=True)
    created_at = models.DateTimeField(default=timezone.now, editable=False)

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class ApiKeyState(models.TextChoices):
    ACTIVE = "active", "active"
    ROTATING = "rotating", "rotating out"
    REVOKED = "revoked", "revoked"
    EXPIRED = "expired", "expired"
    OVER_CAP = "over_cap", "over cap"


class ApiKey(models.Model):
    """A key of a team: global when `app` is empty, else bound to that one app.

    `revoked_at` is the moment revocation takes effect: now for a plain revoke, the end of
    the grace period for a rotated key. A key is usable while that moment is in the future.
    """

    team = models.ForeignKey(Team, on_delete=models.CASCADE, related_name="api_keys")
    app = models.ForeignKey(
        "chat.App", on_delete=models.CASCADE, null=True, blank=True, related_name="api_keys",
        help_text="Empty: a global key for the whole team. Set: a key for this app only.",
    )
    name = models.CharField(max_length=100, default="Api Key")
    prefix = models.CharField(max_length=16, editable=False, help_text="Shown to tell keys apart.")
    key_hash = models.CharField(max_length=64, unique=True, editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    max_usage_points = models.BigIntegerField(default=-1, help_text="-1 means unlimited.")
    usage_points = models.BigIntegerField(default=0, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    replaced_by = models.OneToOneField(
        "self", on_delete=models.SET_NULL, null=True, blank=True, editable=False,
        related_name="replaces",
    )

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"
        indexes = [models.Index(fields=["team", "app"], name="apikey_team_app")]

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @property
    def is_global(self) -> bool:
        return self.app_id is None

    def state(self, now=None) -> ApiKeyState:
        """Revoked, expired and over cap are refused (in that order of precedence); rotating
        (out, within its grace) and active keys work. Over cap reads this row's own count; a
        rotating key's spending is counted on its replacement (keys.services.usage_account)."""
        now = now or timezone.now()
        if self.revoked_at is not None and self.revoked_at <= now:
            return ApiKeyState.REVOKED
        if self.expires_at is not None and self.expires_at <= now:
            return ApiKeyState.EXPIRED
        if self.is_over_cap:
            return ApiKeyState.OVER_CAP
        if self.revoked_at is not None:
            return ApiKeyState.ROTATING
        return ApiKeyState.ACTIVE

    @property
    def is_over_cap(self) -> bool:
        return self.max_usage_points >= 0 and self.usage_points >= self.max_usage_points


class IssueFormToken(models.Model):
    """The one-time token of an admin form that issues keys (add, rotate).

    Claimed (inserted) by the form's first submission; a resubmission finds it taken and
    issues nothing. Only this random token is kept — never a key.
    """

    token = models.CharField(primary_key=True, max_length=64)
    used_at = models.DateTimeField(default=timezone.now)

    class Meta:
        verbose_name = "key form token"


class RateWindow(models.Model):
    """A key's request count in its current rate-limit window, when the counters are kept in
    the database (CACHE_URL=dbcache://…; keys/throttling.py). One row per key, counted by one
    atomic upsert, so every server process counts against the same limit."""

    key = models.OneToOneField(ApiKey, primary_key=True, on_delete=models.CASCADE, related_name="+")
    window_end = models.BigIntegerField(help_text="Unix time at which this window's count resets.")
    count = models.IntegerField()

    class Meta:
        verbose_name = "rate-limit window"
