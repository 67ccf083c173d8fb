"""The key check and rate limit for a view outside DRF (the async chat-completions view).

It runs the very classes DRF runs for every other endpoint, in DRF's order (authenticate,
then throttle), so there is one place for both."""

from config.errors import MissingCredential, RateLimited
from keys.authentication import ApiKeyAuthentication, KeyAuth
from keys.throttling import ApiKeyRateThrottle


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
