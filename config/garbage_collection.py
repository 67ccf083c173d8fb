"""Python's garbage collector tuned for a server process (called by config/asgi.py).

With CPython's defaults a burst of requests spends a large share of its CPU in the cyclic
collector, which finds almost nothing to free: 1000 chat streams opened at once on one worker
triggered 380 young collections (every 700 new container objects), 35 middle ones and three
full ones, 0.44 s of the start phase's 1.7 s, the full ones re-scanning everything Django,
DRF and the models had loaded at start-up (docs/benchmarks.md, "The garbage collector").
Two changes, as large Python services do:

- **`gc.freeze()` once the application is loaded**: the objects alive then (modules, URL
  conf, settings, models' metadata) live as long as the process, so they are moved out of
  the collector's generations and never scanned again. Collected first, so that no garbage is
  kept frozen. Under a pre-forking server (gunicorn `--preload`) it also keeps the collector
  from touching, hence copying, the pages the workers share.
- **A larger young generation** (GC_GEN0_THRESHOLD, 50,000 allocations instead of 700): a
  request's objects mostly die with it, by reference counting, before the collector would
  have promoted them to an older generation that a later full collection has to scan. Cycles
  are still found, a little later: memory held by unreachable cycles grows by at most what
  50,000 objects hold.
"""

import gc


def tune_for_serving(gen0_threshold: int) -> None:
    """Freeze what is alive now and set the young generation's threshold (0 or less: keep
    Python's)."""
    gc.collect()
    gc.freeze()
    if gen0_threshold > 0:
        _, gen1, gen2 = gc.get_threshold()
        gc.set_threshold(gen0_threshold, gen1, gen2)
