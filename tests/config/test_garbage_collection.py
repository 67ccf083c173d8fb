"""The garbage collector as a server process runs it (config/garbage_collection.py)."""

import gc
import json
import os
import subprocess
import sys
import weakref
from pathlib import Path

import pytest

from config.garbage_collection import tune_for_serving

ROOT = Path(__file__).resolve().parents[2]

REPORT = """
import gc, json
before = {"threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}
import config.asgi
print(json.dumps({"before": before, "threshold": gc.get_threshold(), "frozen": gc.get_freeze_count()}))
"""


def serving_process_gc(**env) -> dict:
    """What loading the ASGI application does to the collector, in a fresh interpreter."""
    environment = {**os.environ, "DJANGO_SETTINGS_MODULE": "config.settings", **env}
    out = subprocess.run([sys.executable, "-c", REPORT], cwd=ROOT, env=environment,
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture
def restored_collector():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_loading_the_asgi_application_freezes_it_and_widens_the_young_generation():
    report = serving_process_gc()
    assert report["before"]["frozen"] == 0
    assert report["frozen"] > 10_000  # Django, DRF, the URL conf, the models: all loaded by then
    assert report["threshold"] == [50_000, *report["before"]["threshold"][1:]]


def test_the_threshold_is_a_setting_and_zero_keeps_pythons():
    assert serving_process_gc(GC_GEN0_THRESHOLD="20000")["threshold"][0] == 20_000
    report = serving_process_gc(GC_GEN0_THRESHOLD="0")
    assert report["threshold"] == report["before"]["threshold"]
    assert report["frozen"] > 10_000


def test_tuning_collects_before_freezing(restored_collector):
    """Garbage alive at start-up (a cycle nothing refers to) is freed, not frozen for good."""

    class Node:
        pass

    a, b = Node(), Node()
    a.other, b.other = b, a
    cycle = weakref.ref(a)
    gc.disable()  # no collection may free the cycle before the tuning does
    try:
        del a, b
        assert cycle() is not None
        tune_for_serving(30_000)
    finally:
        gc.enable()
    assert cycle() is None  # a frozen cycle would still be alive
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == 30_000
