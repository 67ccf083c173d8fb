"""The production server: uvicorn with N worker processes, checked first so that rate limits
and revocations hold across the processes (docs/production.md).

Revocation, expiry and usage caps are read from the database on every request, so every
process sees them at once. Rate-limit counters follow CACHE_URL (keys/throttling.py): the
local-memory cache — the default — is one process's own, so with more than one worker and no
CACHE_URL set this command uses the database cache (`dbcache://`, counters in the database);
a CACHE_URL explicitly set to the local-memory cache is refused. Then it replaces itself with
uvicorn (same process id: signals reach uvicorn's supervisor directly).
"""

import os
import subprocess
import sys

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from keys.throttling import counts_in_cache

MULTI_PROCESS_CACHE_URL = "dbcache://fastgpt_cache"
_PROCESS_LOCAL_BACKENDS = ("django.core.cache.backends.locmem.LocMemCache",)


class Command(BaseCommand):
    help = "Serve the API with uvicorn and N worker processes (rate limits shared across them)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
        parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
        parser.add_argument(
            "--workers", type=int, default=int(os.environ.get("WEB_CONCURRENCY", "0")) or os.cpu_count() or 1,
            help="Worker processes (default: WEB_CONCURRENCY, else the number of cores).",
        )
        parser.add_argument(
            "--forwarded-allow-ips", default=os.environ.get("FORWARDED_ALLOW_IPS", ""),
            help="Proxies whose X-Forwarded-For/-Proto are believed (default: FORWARDED_ALLOW_IPS, none).",
        )
        parser.add_argument("--access-log", action="store_true", help="Log every request (off by default).")

    def handle(self, *args, **options):
        workers = options["workers"]
        if workers < 1:
            raise CommandError("--workers must be at least 1.")
        self._require_migrated()
        env = dict(os.environ)
        backend = settings.CACHES["default"]["BACKEND"]
        if workers > 1 and backend in _PROCESS_LOCAL_BACKENDS:
            if os.environ.get("CACHE_URL"):
                raise CommandError(
                    f"CACHE_URL={os.environ['CACHE_URL']} is one process's memory: with --workers {workers} "
                    f"each process would count rate limits on its own (a key would get {workers}× its "
                    "limit). Set CACHE_URL=redis://… or dbcache://fastgpt_cache, or use --workers 1."
                )
            env["CACHE_URL"] = MULTI_PROCESS_CACHE_URL
            self.stdout.write(f"CACHE_URL not set: {workers} workers share rate limits through the database ({MULTI_PROCESS_CACHE_URL}).")
        if env.get("CACHE_URL", "").startswith("dbcache://"):
            # Django's database cache needs its table; the rate-limit counters themselves are
            # keys.RateWindow rows (made by migrate). Idempotent.
            subprocess.run([sys.executable, "manage.py", "createcachetable"], cwd=settings.BASE_DIR, env=env, check=True)
        elif workers > 1 and counts_in_cache():
            self.stdout.write(f"Rate limits counted in the shared cache ({backend}).")
        command = [
            sys.executable, "-m", "uvicorn", "config.asgi:application",
            "--host", options["host"], "--port", str(options["port"]), "--workers", str(workers),
            "--lifespan", "off", "--forwarded-allow-ips", options["forwarded_allow_ips"],
        ]
        if not options["access_log"]:
            command.append("--no-access-log")
        self.stdout.write(" ".join(command[1:]))
        self.stdout.flush()
        connections.close_all()
        os.chdir(settings.BASE_DIR)
        os.execve(sys.executable, command, env)

    def _require_migrated(self) -> None:
        executor = MigrationExecutor(connections["default"])
        pending = executor.migration_plan(executor.loader.graph.leaf_nodes())
        if pending:
            raise CommandError(
                f"{len(pending)} database migration(s) not applied (e.g. {pending[0][0]}): run "
                "`python manage.py migrate` first."
            )
