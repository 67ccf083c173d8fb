"""Chunking speed: `datasets.ingestion.chunking.split_text` on 5 MB of mixed Chinese/English.

    .venv/bin/python bench/chunking.py [--mb 5] [--repeat 3]

Two documents of about `--mb` million characters, built from fixed sentences (bench/words.py's
`mixed_text`, seeded): plain paragraphs, and the same as Markdown (a `##` heading every 7
paragraphs, a 30-row pipe table every 50). Each is split with the auto settings (1000
characters) and with 300; the best of `--repeat` runs is printed.
"""

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from words import mixed_text  # noqa: E402

from datasets.ingestion.chunking import ChunkSettings, split_text  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--mb", type=float, default=5)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    plain = mixed_text(int(args.mb * 1_000_000))
    table = "\n\n| name | value |\n| --- | --- |\n" + "".join(f"| row {i} | {i * 7} |\n" for i in range(30))
    markdown = "\n\n".join(
        (f"## Section {i}\n\n" if i % 7 == 0 else "") + p + (table if i % 50 == 0 else "")
        for i, p in enumerate(plain.split("\n\n"))
    )
    for name, text in (("plain", plain), ("markdown", markdown)):
        for size in (1000, 300):
            best, chunks = float("inf"), []
            for _ in range(args.repeat):
                t = time.perf_counter()
                chunks = split_text(text, ChunkSettings(chunk_size=size))
                best = min(best, time.perf_counter() - t)
            print(
                f"{name:8s} {len(text):>10,} chars  chunk_size {size:>4}: {len(chunks):>6,} chunks in {best:.3f} s"
                f"  ({len(text) / best / 1e6:.1f} M chars/s, longest {max(len(c.text) for c in chunks)})"
            )


if __name__ == "__main__":
    main()
