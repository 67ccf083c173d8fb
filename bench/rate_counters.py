"""What counting one request against a key's rate limit costs, per place the counter can live:
the local-memory cache (one process: `make run`), the database (`dbcache://`: one upsert of a
`keys_ratewindow` row) on SQLite and PostgreSQL, and Redis (`redis://`: one INCR).

    .venv/bin/python bench/rate_counters.py [--calls 5000]

Per store, in a child process (Django is configured once per process) on a fresh database
(bench/databases.py) — and, for Redis, a redis-server started on a free port: `migrate`, one
key, then CALLS × `keys.throttling.seconds_until_allowed` one after another. Printed: wall time
per call, this process's CPU per call and the server's (PostgreSQL backend / redis-server) —
both from /proc/<pid>/stat — and the load average beside them.
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int | str = "self") -> float:
    """utime + stime of a process, from /proc/<pid>/stat."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def child(calls: int) -> None:
    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    django.setup()
    from django.core.management import call_command
    from django.db import connection

    from keys.models import ApiKey, Team
    from keys.throttling import counts_in_cache, seconds_until_allowed

    call_command("migrate", verbosity=0)
    team = Team.objects.create(name=f"bench-{time.time_ns()}")
    key = ApiKey.objects.create(team=team, prefix="bench", key_hash=f"{time.time_ns():064d}"[-64:])
    server_pid = os.environ.get("SERVER_PID")
    if connection.vendor == "postgresql" and not counts_in_cache():
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_backend_pid()")
            server_pid = str(cursor.fetchone()[0])
    for _ in range(200):  # warm-up
        seconds_until_allowed(key_id=key.pk, rate="100000000/hour")
    server_before = cpu_seconds(server_pid) if server_pid else 0.0
    cpu_before, wall_before = cpu_seconds(), time.perf_counter()
    for _ in range(calls):
        assert seconds_until_allowed(key_id=key.pk, rate="100000000/hour") is None
    wall, cpu = time.perf_counter() - wall_before, cpu_seconds() - cpu_before
    server = (cpu_seconds(server_pid) - server_before) if server_pid else None
    print(json.dumps({"wall_us": wall / calls * 1e6, "cpu_us": cpu / calls * 1e6,
                      "server_cpu_us": None if server is None else server / calls * 1e6}))


def run(name: str, database_url: str, cache_url: str, calls: int, server_pid: int | None = None) -> dict:
    env = {**os.environ, "DATABASE_URL": database_url, "CACHE_URL": cache_url, "API_KEY_RATE": ""}
    if server_pid:
        env["SERVER_PID"] = str(server_pid)
    out = subprocess.run([sys.executable, __file__, "--child", "--calls", str(calls)], env=env, cwd=ROOT,
                         capture_output=True, text=True, check=True)
    return {"store": name, **json.loads(out.stdout.strip().splitlines()[-1])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.calls)

    from bench.databases import throwaway_database

    rows = []
    with throwaway_database("sqlite") as sqlite_url:
        rows.append(run("local memory (one process)", sqlite_url, "locmemcache://", args.calls))
        rows.append(run("database: SQLite", sqlite_url, "dbcache://fastgpt_cache", args.calls))
        redis_binary = shutil.which("redis-server")
        if redis_binary:
            from tests.live_servers import free_port

            port = free_port()
            with tempfile.TemporaryDirectory() as folder:
                redis = subprocess.Popen([redis_binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                          "--appendonly", "no", "--dir", folder], stdout=subprocess.DEVNULL)
                try:
                    time.sleep(0.5)
                    rows.append(run("Redis (INCR)", sqlite_url, f"redis://127.0.0.1:{port}/0", args.calls, redis.pid))
                finally:
                    redis.terminate()
                    redis.wait()
        else:
            print("redis-server not installed: Redis not measured")
    with throwaway_database("postgres") as postgres_url:
        rows.append(run("database: PostgreSQL", postgres_url, "dbcache://fastgpt_cache", args.calls))

    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"rate-limit counting, {args.calls} calls per store, one after another; load average {load}")
    print(f"{'store':<28} {'wall µs/call':>12} {'CPU µs/call':>12} {'server CPU µs/call':>19}")
    for row in rows:
        server = "—" if row["server_cpu_us"] is None else f"{row['server_cpu_us']:.0f}"
        print(f"{row['store']:<28} {row['wall_us']:>12.0f} {row['cpu_us']:>12.0f} {server:>19}")


if __name__ == "__main__":
    main()
