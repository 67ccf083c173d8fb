"""A persistent SECRET_KEY for installs that do not set one.

The embedded default must run with no configuration, yet a key that changes on every start
would log operators out of the admin and differ between worker processes. So, when the
environment gives none, one is generated once and kept in a private file beside the project.
"""

import os
import secrets
from pathlib import Path


def load_or_create(path: Path) -> str:
    """Return the key stored at ``path``, creating the file (mode 0600) on first use."""
    try:
        return path.read_text().strip()
    except FileNotFoundError:
        pass
    key = secrets.token_urlsafe(50)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process won the race: use its key
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(key)
    return key
