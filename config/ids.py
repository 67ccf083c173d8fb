"""Public ids shaped like FastGPT's (24 hex characters, as MongoDB ObjectIds are).

The first 8 characters are the creation second, so new rows land at the end of the index.
"""

import secrets
import time


def new_object_id() -> str:
    return f"{int(time.time()):08x}{secrets.token_hex(8)}"
