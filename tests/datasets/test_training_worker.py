"""A real `manage.py db_worker` process trains what the API process queued, through the
database task backend; this process's cached vectors see the worker's writes."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from django.db import connection
from django_tasks_db.models import DBTaskResult

from datasets.models import CollectionStatus, Data, DataIndex, TrainingState
from datasets.search.vector import vector_backend
from datasets.services.data import NewData, insert_data
from keys.models import ApiKey
from providers.embeddings import lexical_embedding
from providers.words import words
from tests.live_servers import database_url
from tests.datasets.storage_helpers import make_collection, make_dataset

ROOT = Path(__file__).resolve().parents[2]


def run_worker(*extra: str) -> subprocess.CompletedProcess:
    """`db_worker --batch`: run every task that is due, then exit."""
    env = {**os.environ, "DATABASE_URL": database_url(connection.settings_dict), "CONN_MAX_AGE": "0"}
    env.pop("TASKS_BACKEND", None)
    return subprocess.run(
        [sys.executable, "manage.py", "db_worker", "--batch", "--no-startup-delay", "--no-reload", *extra],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
    )


@pytest.mark.django_db(transaction=True)
def test_the_worker_trains_queued_items(team, global_key, settings):
    assert settings.TASKS["default"]["BACKEND"] == "django_tasks_db.DatabaseBackend"
    collection = make_collection(make_dataset(team), usage_key=global_key.row)
    backend = vector_backend()
    query = lexical_embedding(["worker process vectors"])[0]
    assert backend.recall(dataset_ids=[collection.dataset_id], query=query, limit=5) == []  # cached: empty

    texts = ["vectors written by the worker process", "another chunk", "第三段"]
    result = insert_data(collection=collection, items=[NewData(q=t, chunk_index=i) for i, t in enumerate(texts)])
    assert result.insert_len == 3
    [task] = DBTaskResult.objects.all()
    assert task.task_path == "datasets.tasks.train_collection" and task.status == "READY"
    assert Data.objects.filter(training_state=TrainingState.PENDING).count() == 3  # nothing trained here

    finished = run_worker()
    assert finished.returncode == 0, finished.stdout + finished.stderr

    task.refresh_from_db()
    assert task.status == "SUCCESSFUL", task.traceback
    assert task.return_value == {"trained": 3, "retrying": 0, "failed": 0,
                                 "tokens": sum(len(words(t)) for t in texts)}
    assert Data.objects.filter(training_state=TrainingState.READY).count() == 3
    assert set(DataIndex.objects.values_list("dimensions", flat=True)) == {512}
    collection.refresh_from_db()
    assert collection.status == CollectionStatus.READY
    assert ApiKey.objects.get(pk=global_key.row.pk).usage_points == sum(len(words(t)) for t in texts)

    # This process's cache noticed the worker's writes (vector_version moved).
    hits = backend.recall(dataset_ids=[collection.dataset_id], query=query, limit=5)
    assert hits and hits[0].data_id == Data.objects.get(q=texts[0]).pk
    assert np.isclose(hits[0].score, float(query @ lexical_embedding([texts[0]])[0]), atol=1e-5)
