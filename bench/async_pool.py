"""Would psycopg's async pool pay for a chat turn's read? The turn's one SELECT
(chat/completions/turn_store.py) run three ways, interleaved, CPU per read from this process:

  * as today: `await sync_to_async(read)()` in a fresh ThreadSensitiveContext per read (a thread
    hop, as Django runs each request), the read through Django's connection and its pool
    (config/postgres: each checkout checks the connection), the connection given back after;
  * the same hop with the bare psycopg statement on a connection of a sync psycopg pool (no
    Django cursor wrapper, no per-checkout check): what the hop itself and Django cost;
  * psycopg's AsyncConnectionPool on the event loop: no hop at all.

    .venv/bin/python -m tests.with_postgres .venv/bin/python bench/async_pool.py [--reads 2000]

PostgreSQL only. Migrates a throwaway database and makes the demo key (`bootstrap_demo`).
"""

import argparse
import asyncio
import io
import os
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))


def setup() -> str:
    os.environ.update({"DJANGO_SETTINGS_MODULE": "config.settings", "LOG_LEVEL": "WARNING", "DEBUG": "false"})
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)
    out = io.StringIO()
    call_command("bootstrap_demo", stdout=out)
    return re.search(r"app key:\s+(fastgpt-\S+)", out.getvalue()).group(1)


async def measure(secret: str, reads: int, rounds: int, concurrency: int) -> dict:
    from asgiref.sync import ThreadSensitiveContext, sync_to_async
    from django.db import connection
    from psycopg_pool import AsyncConnectionPool, ConnectionPool

    from chat.completions.services import release_connection
    from chat.completions.turn_store import _READ_SQL, read_turn
    from keys.hashing import hash_key

    key_hash = hash_key(secret)
    params = {"key_hash": key_hash, "app_id": None, "chat_id": None, "response_id": None}
    sql = _READ_SQL["postgresql"]
    conninfo = connection.get_connection_params()
    conninfo.pop("cursor_factory", None)
    conninfo.pop("context", None)
    size = max(2, concurrency)
    sync_pool = ConnectionPool(kwargs={**conninfo, "autocommit": True}, min_size=size, max_size=size, open=True)
    async_pool = AsyncConnectionPool(kwargs={**conninfo, "autocommit": True}, min_size=size, max_size=size, open=False)
    await async_pool.open()

    def django_read():
        try:
            assert read_turn(key_hash=key_hash, app_id=None, chat_id=None, response_id=None).key is not None
        finally:
            release_connection()

    def bare_read():
        with sync_pool.connection() as conn:
            assert conn.execute(sql, params).fetchone() is not None

    async def hop(function):
        async with ThreadSensitiveContext():
            await sync_to_async(function)()

    async def on_loop():
        async with async_pool.connection() as conn:
            cursor = await conn.execute(sql, params)
            assert await cursor.fetchone() is not None

    variants = {
        "Django connection, in a hop (today)": lambda: hop(django_read),
        "bare psycopg sync pool, in a hop": lambda: hop(bare_read),
        "psycopg AsyncConnectionPool, no hop": on_loop,
    }
    cpu = {name: 0.0 for name in variants}
    wall = {name: 0.0 for name in variants}

    async def run(make, n):
        queue = iter(range(n))

        async def worker():
            for _ in queue:
                await make()

        await asyncio.gather(*(worker() for _ in range(concurrency)))

    for make in variants.values():  # warm up
        await run(make, 50)
    for _ in range(rounds):
        for name, make in variants.items():
            started_cpu, started = time.process_time(), time.perf_counter()
            await run(make, reads // rounds)
            cpu[name] += time.process_time() - started_cpu
            wall[name] += time.perf_counter() - started
    await async_pool.close()
    sync_pool.close()
    return {name: (cpu[name] / reads * 1000, wall[name] / reads * 1000) for name in variants}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--reads", type=int, default=2000, help="reads per variant and concurrency (default 2000)")
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print("PostgreSQL only: run under `python -m tests.with_postgres`.", file=sys.stderr)
        return 2
    secret = setup()
    print(f"async pool — {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average {os.getloadavg()[0]:.2f}; "
          f"{args.reads} reads per variant in {args.rounds} interleaved rounds")
    print("| variant | c | CPU ms/read | wall ms/read |\n|---|--:|--:|--:|")
    for concurrency in (1, 32):
        for name, (cpu, wall) in asyncio.run(measure(secret, args.reads, args.rounds, concurrency)).items():
            print(f"| {name} | {concurrency} | {cpu:.3f} | {wall:.3f} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
