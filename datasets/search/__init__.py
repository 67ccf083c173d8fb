"""Dataset search: recall backends (vector/, fulltext/) and the pipeline that fuses them.

`datasets.search.pipeline.search(...)` is the one entry point (searchTest and chat use it)."""
