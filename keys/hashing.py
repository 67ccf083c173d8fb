"""Making, hashing and parsing API keys.

A key is `fastgpt-` followed by 48 random letters and digits (about 286 bits). With that much
entropy a fast hash is enough: a slow password hasher guards weak secrets, and would only make
every request slower here. The database holds the SHA-256 of the whole key and a short prefix.
"""

import hashlib

from django.utils.crypto import RANDOM_STRING_CHARS, get_random_string

KEY_PREFIX = "fastgpt-"
SECRET_LENGTH = 48
DISPLAY_PREFIX_LENGTH = len(KEY_PREFIX) + 6


def generate_key() -> str:
    return KEY_PREFIX + get_random_string(SECRET_LENGTH, RANDOM_STRING_CHARS)


def hash_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def display_prefix(key: str) -> str:
    return key[:DISPLAY_PREFIX_LENGTH]


def split_legacy_key(credential: str) -> tuple[str, str | None]:
    """Split FastGPT's legacy `fastgpt-<secret>-<appId>` form into (key, appId).

    A plain key has exactly one `-` (the secret has none), so a third part is an app id.
    """
    parts = credential.split("-")
    if len(parts) == 3 and all(parts):
        return f"{parts[0]}-{parts[1]}", parts[2]
    return credential, None
