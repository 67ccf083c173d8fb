"""Retrain the knowledge base's failed items: back to pending, and enqueued for the workers.

    python manage.py retrain_failed                      # every collection
    python manage.py retrain_failed --collection ID ...  # only these

Also re-enqueues pending items no task will pick up (a worker killed while holding them): safe
to run at any time, e.g. from cron.
"""

from django.core.management.base import BaseCommand

from datasets.training import retrain_failed


class Command(BaseCommand):
    help = "Reset failed knowledge-base items to pending and enqueue their training."

    def add_arguments(self, parser):
        parser.add_argument(
            "--collection", action="append", dest="collections", metavar="ID",
            help="Only this collection (repeatable). Default: all.",
        )

    def handle(self, *args, collections=None, **options):
        reset = retrain_failed(collection_ids=collections)
        self.stdout.write(f"{reset} failed item(s) reset to pending and queued for training.")
