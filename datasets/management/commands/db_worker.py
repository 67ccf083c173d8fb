"""`manage.py db_worker`: django-tasks' database worker (same options), kept alive when the
database connection is lost.

The worker of `django_tasks_db` exits on any database error but SQLite's "locked", so a
PostgreSQL restart or failover ended every worker process, and knowledge-base training stopped
until someone started them again (seen in tests/e2e: a worker polling while the restart test
restarted the server). Here a lost connection (OperationalError, InterfaceError) is logged,
Django's connections are closed and the worker starts again after a pause that doubles up to
30 s — as the server's pool replaces dead connections. A task cut off by it is left as one of
a killed worker is: its items' claims expire and `retrain_failed` re-queues them. SIGTERM
still stops the worker, between tasks or during the pause.

This app comes before `django_tasks_db` in INSTALLED_APPS so that this command is the one
`manage.py db_worker` runs.
"""

import logging
import time

from django.db import InterfaceError, OperationalError, connections
from django_tasks_db.management.commands import db_worker

logger = logging.getLogger(__name__)

FIRST_PAUSE, LONGEST_PAUSE = 1.0, 30.0  # seconds before starting again after a lost connection


class Command(db_worker.Command):
    help = "Run a database background worker (kept alive when the database connection is lost)"

    def handle(self, *args, **options) -> None:
        pause, failed_at = FIRST_PAUSE, None
        while True:
            try:
                return super().handle(*args, **options)
            except (OperationalError, InterfaceError) as lost:
                now = time.monotonic()
                if failed_at is not None and now - failed_at > LONGEST_PAUSE * 2:
                    pause = FIRST_PAUSE  # the last loss was long ago: start the back-off over
                failed_at = now
                logger.warning("db_worker: database connection lost (%s); starting again in %.0f s", lost, pause)
                _close_connections()
                time.sleep(pause)
                pause = min(pause * 2, LONGEST_PAUSE)


def _close_connections() -> None:
    """Every connection of this process closed (a dead one may fail to close: ignored)."""
    for connection in connections.all(initialized_only=True):
        try:
            connection.close()
        except (OperationalError, InterfaceError):
            pass
