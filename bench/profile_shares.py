"""Where a profiled process spent its samples, by part: py-spy's raw (collapsed) stacks in,
a table of shares out.

    .venv/bin/python bench/profile_shares.py PROFILE.txt [--requests N] [--top 25]

PROFILE.txt is `py-spy record --format raw` output (bench/chat_overhead.py --profile writes
one). Each sample goes to ONE part: the first frame, from the leaf up, whose file belongs to a
known part (so json.dumps called by our code counts as JSON, a Django utility called by a
middleware counts as middleware). --cpu-ms X shows each share as ms of X (the CPU per request
measured from /proc); --requests N --rate R as GIL-holding ms per request instead.

A sync middleware's cost shows up mostly as "thread hops": under ASGI, Django runs each one
in sync_to_async, and the hop (executor, thread wake-up, future) costs far more than the
middleware's own code.
"""

import argparse
import re
import sys
from collections import Counter

# (part, pattern on the frame's file), checked from the leaf up; the first match wins.
PARTS = [
    ("database driver (psycopg / sqlite3)", r"/psycopg/|/psycopg_pool/|sqlite3/|/django/db/backends/"),
    ("ORM (django.db: queries, models, transactions)", r"/django/db/"),
    ("HTTP client (httpx / httpcore / anyio / h11)", r"/httpx/|/httpcore/|/anyio/|/h11/|/sniffio/|/idna/|/certifi/"),
    ("JSON encode/decode", r"/json/"),
    ("logging", r"/logging/"),
    ("Django middleware (session, csrf, auth, messages, …)",
     r"/django/middleware/|/django/contrib/(sessions|auth|messages)/|/django/utils/deprecation\.py"),
    ("thread hops (asgiref sync_to_async, executor, threading)",
     r"/asgiref/|/concurrent/futures/|/threading\.py|/queue\.py"),
    ("Django request/response (handlers, http, urls, signals)",
     r"/django/core/handlers/|/django/http/|/django/urls/|/django/dispatch/|/django/core/signals|"
     r"/django/contrib/staticfiles/|/django/utils/|/django/conf/|/django/views/|/django/core/"),
    ("DRF (serializers, fields)", r"/rest_framework/"),
    ("our code (chat, keys, config, providers)", r"/(chat|keys|config|providers|datasets)/"),
    ("uvicorn + HTTP parsing", r"/uvicorn/|httptools"),
    ("event loop (asyncio / uvloop)", r"/asyncio/|uvloop"),
]
FRAME = re.compile(r"^(?P<func>.*) \((?P<file>[^()]*):\d+\)$")


def classify(frames: list[str]) -> str:
    for frame in reversed(frames):  # leaf last in py-spy's raw format
        match = FRAME.match(frame)
        # py-spy names files relative to their sys.path entry ("django/db/models/query.py").
        path = "/" + (match.group("file") if match else frame)
        for part, pattern in PARTS:
            if re.search(pattern, path):
                return part
    return "other (interpreter, C, unknown)"


def read(path: str) -> Counter:
    parts: Counter = Counter()
    with open(path) as handle:
        for line in handle:
            stack, _, count = line.rstrip("\n").rpartition(" ")
            if not stack or not count.isdigit():
                continue
            frames = stack.split(";")
            if frames and frames[0].startswith(("thread", "process")):
                frames = frames[1:]
            parts[classify(frames)] += int(count)
    return parts


def table(parts: Counter, *, requests: int = 0, rate: float = 0, cpu_ms: float = 0) -> list[str]:
    """Shares of the samples; with cpu_ms (the process's CPU per request, from /proc), each
    share in ms of it; else with requests and rate, the GIL-holding time per request — which
    on a loaded machine counts time a thread held the GIL while descheduled, so it can exceed
    the CPU time."""
    total = sum(parts.values()) or 1
    per_request = cpu_ms or (requests and rate and total / rate / requests * 1000)
    head = " ms per request (share x CPU) |" if cpu_ms else " ms per request (GIL held) |"
    out = ["| part | samples | share |" + (head if per_request else ""),
           "|---|--:|--:|" + ("--:|" if per_request else "")]
    for part, n in parts.most_common():
        ms = f" {n / total * per_request:.2f} |" if per_request else ""
        out.append(f"| {part} | {n} | {n / total * 100:.1f} % |{ms}")
    ms = f" {per_request:.2f} |" if per_request else ""
    out.append(f"| total (samples holding the GIL) | {total} | 100 % |{ms}")
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("profile")
    parser.add_argument("--requests", type=int, default=0, help="requests served while sampling")
    parser.add_argument("--rate", type=float, default=0, help="samples per second (py-spy -r)")
    parser.add_argument("--cpu-ms", type=float, default=0, help="CPU ms per request: shares are shown as ms of it")
    args = parser.parse_args(argv)
    print("\n".join(table(read(args.profile), requests=args.requests, rate=args.rate, cpu_ms=args.cpu_ms)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
