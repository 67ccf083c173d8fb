"""The key check and rate limit for a view outside DRF (the async chat-completions view).

It runs the very classes and checks DRF runs for every other endpoint, in DRF's order
(authenticate, then throttle), so there is one place for both."""

from config.errors import MissingCredential, RateLimited
from keys.authentication import ApiKeyAuthentication, KeyAuth, admit_key
from keys.models import ApiKey
from keys.throttling import ApiKeyRateThrottle, seconds_until_allowed


def authenticate_and_throttle(request) -> KeyAuth:
    """The key of ``request`` (a Django HttpRequest), counted against its rate limit; also set
    as ``request.auth``. Raises MissingCredential, InvalidApiKey, UsageCapReached or RateLimited."""
    found = ApiKeyAuthentication().authenticate(request)
    if found is None:
        raise MissingCredential()
    request.auth = found[1]
    throttle = ApiKeyRateThrottle()
    if not throttle.allow_request(request, None):
        raise RateLimited(throttle.wait())
    return request.auth


def admit_and_throttle(key: ApiKey | None, *, legacy_app_id: str | None, now=None) -> KeyAuth:
    """As `authenticate_and_throttle`, for a key its caller already read by the request's
    secret (keys.authentication.credential_of): the chat turn reads it joined with its app."""
    auth = admit_key(key, legacy_app_id=legacy_app_id, now=now)
    wait = seconds_until_allowed(key_id=auth.key.pk)
    if wait is not None:
        raise RateLimited(wait)
    return auth
