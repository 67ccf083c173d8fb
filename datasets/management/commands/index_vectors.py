"""Build the HNSW indexes that are due now, without waiting for the datasets to be still
(PostgreSQL; a no-op elsewhere), and drop those left by datasets deleted outside the API.

    python manage.py index_vectors                    # every dataset
    python manage.py index_vectors --dataset ID ...   # only these
    python manage.py index_vectors --min-rows 0       # even datasets under VECTOR_INDEX_MIN_ROWS

Useful after a bulk load when searches should be fast at once, with a task backend that cannot
defer tasks (no checks are queued then), or from cron. Safe to run at any time: an index that
exists is left alone, and builds run one at a time.
"""

from django.core.management.base import BaseCommand
from django.db import connection

from datasets.models import Dataset


class Command(BaseCommand):
    help = "Build the due per-dataset HNSW indexes now (PostgreSQL)."

    def add_arguments(self, parser):
        parser.add_argument(
            "--dataset", action="append", dest="datasets", metavar="ID",
            help="Only this dataset (repeatable). Default: all.",
        )
        parser.add_argument(
            "--min-rows", type=int, default=None,
            help="Index datasets with at least this many vectors of a size (default: VECTOR_INDEX_MIN_ROWS).",
        )

    def handle(self, *args, datasets=None, min_rows=None, **options):
        if connection.vendor != "postgresql":
            self.stdout.write("Nothing to do: vectors are searched exactly on this database.")
            return
        from datasets.search.vector.pgvector_indexes import build_due, drop_orphans

        dropped = drop_orphans() if datasets is None else 0
        ids = datasets or list(Dataset.objects.order_by("pk").values_list("pk", flat=True))
        built = 0
        for dataset_id in ids:
            for dimensions in build_due(dataset_id=dataset_id, min_rows=min_rows):
                built += 1
                self.stdout.write(f"Indexed dataset {dataset_id} ({dimensions} dimensions).")
        self.stdout.write(f"{built} index(es) built, {dropped} left by deleted datasets dropped.")
