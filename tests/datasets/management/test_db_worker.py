"""`manage.py db_worker` (datasets/management/commands/db_worker.py): django-tasks' worker,
started again after a lost database connection instead of exiting. The real outage, with a
real worker process: tests/e2e/test_postgres_restart.py."""

import pytest
from django.core.management import get_commands
from django.db import InterfaceError, OperationalError
from django_tasks_db.management.commands import db_worker as tasks_db_worker

from datasets.management.commands import db_worker


@pytest.fixture
def parent_runs(monkeypatch):
    """Stand-ins for django-tasks' worker: each run raises the next of `failures` (then
    returns), and the pauses between runs are recorded instead of slept."""
    state = {"failures": [], "runs": 0, "pauses": []}

    def handle(self, *args, **options):
        state["runs"] += 1
        if state["failures"]:
            raise state["failures"].pop(0)

    monkeypatch.setattr(tasks_db_worker.Command, "handle", handle)
    monkeypatch.setattr(db_worker.time, "sleep", state["pauses"].append)
    return state


def test_manage_py_db_worker_is_this_apps_command():
    assert get_commands()["db_worker"] == "datasets"


def test_a_lost_connection_starts_the_worker_again_after_a_growing_pause(parent_runs, caplog):
    lost = OperationalError("terminating connection due to administrator command")
    parent_runs["failures"] = [lost, InterfaceError("the connection is closed"), lost, lost, lost, lost, lost]
    db_worker.Command().handle(queue_name="default")
    assert parent_runs["runs"] == 8
    assert parent_runs["pauses"] == [1.0, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert "database connection lost (terminating connection due to administrator command)" in caplog.text


def test_other_errors_still_end_the_worker(parent_runs):
    parent_runs["failures"] = [ValueError("a bug")]
    with pytest.raises(ValueError):
        db_worker.Command().handle(queue_name="default")
    assert parent_runs["runs"] == 1 and parent_runs["pauses"] == []
