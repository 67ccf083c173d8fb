"""Bearer authentication by API key, as a DRF authentication class.

Accepts `Authorization: Bearer fastgpt-…` (scheme word in any case, extra spaces tolerated)
and FastGPT's legacy `fastgpt-<secret>-<appId>` form. Every request reads the key from the
database (one indexed query), so a revocation or rotation is seen at once by every process;
nothing about a key's validity is cached.
"""

from dataclasses import dataclass

from django.utils import timezone
from rest_framework.authentication import BaseAuthentication

from config.errors import BEARER_CHALLENGE, InvalidApiKey, MissingCredential, UsageCapReached
from keys.hashing import split_legacy_key
from keys.models import ApiKey, ApiKeyState
from keys.selectors import key_for_secret
from keys.services import touch_last_used, usage_account


@dataclass(frozen=True)
class KeyAuth:
    """What a request is allowed to act as: `request.auth`."""

    key: ApiKey
    legacy_app_id: str | None = None  # from `fastgpt-<secret>-<appId>`; the key's own app wins

    @property
    def team_id(self) -> str:
        return self.key.team_id

    @property
    def app_id(self) -> str | None:
        """The app this request acts for: the key's own, else one named in a legacy key."""
        return self.key.app_id or self.legacy_app_id


def authenticate_header_value(header: str) -> KeyAuth | None:
    """Check an Authorization header's value: None when absent, else the key it names.

    Raises MissingCredential (malformed), InvalidApiKey (unknown, revoked, expired) or
    UsageCapReached. Used by the DRF class below (which keys/access.py also runs); the chat
    turn reads the key with its app in one query and calls `credential_of` and `admit_key`.
    """
    credential = credential_of(header)
    if credential is None:
        return None
    secret, legacy_app_id = credential
    return admit_key(key_for_secret(key=secret), legacy_app_id=legacy_app_id)


def credential_of(header: str) -> tuple[str, str | None] | None:
    """The secret (and legacy app id) of an Authorization header; None when absent.
    Raises MissingCredential when malformed."""
    if not header.strip():
        return None
    scheme, _, credential = header.strip().partition(" ")
    credential = credential.strip()
    if scheme.lower() != "bearer" or not credential or " " in credential:
        raise MissingCredential()
    return split_legacy_key(credential)


def admit_key(key: ApiKey | None, *, legacy_app_id: str | None = None, now=None) -> KeyAuth:
    """The checks on a key read by its hash (None: no such key), in this order: unknown,
    revoked, expired, over its usage cap. Records its use (at most once per resolution).
    ``now``: the moment to judge by (default: now)."""
    if key is None:
        raise InvalidApiKey()
    now = now or timezone.now()
    state = key.state(now)
    if state == ApiKeyState.REVOKED:
        raise InvalidApiKey("This API key has been revoked.")
    if state == ApiKeyState.EXPIRED:
        raise InvalidApiKey("This API key has expired.")
    if usage_account(key=key).is_over_cap:  # a rotating key shares its replacement's count
        raise UsageCapReached()
    touch_last_used(key=key, now=now)
    return KeyAuth(key=key, legacy_app_id=legacy_app_id)


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request):
        auth = authenticate_header_value(request.META.get("HTTP_AUTHORIZATION", ""))
        return None if auth is None else (None, auth)

    def authenticate_header(self, request) -> str:
        return BEARER_CHALLENGE
