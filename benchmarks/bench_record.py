"""Recording a run with 10,000 × 4 KiB outputs, and re-verifying them through the cache.

The run is captured with ``lake.capture``: the 10,000 files are written in ``artifacts/``
inside the block (not timed), and the clock runs from the block's exit to its return,
which is everything kfm-prov does to record the run: re-check the input, hash the
outputs (cold: new paths), write and validate the receipts, build and write
``prov.json`` with its 10,000 entities, hash the evidence, scan it for secrets and index
the run. The run has one raw input, as a split of one file into parts would.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from benchmarks.harness import Row, at_least, at_most, log, median, repeat

FILES = 10_000
SIZE = 4096
COMMIT = "0123456789abcdef0123456789abcdef01234567"


def make_lake(root: Path) -> Any:
    from kfm_prov.lake import Lake

    if root.exists():
        shutil.rmtree(root)
    lake = Lake.init(root)
    source = root / "data/raw/parts/source.bin"
    source.parent.mkdir(parents=True)
    source.write_bytes(b"x" * 4096)
    lake.raw_add([source], license="CC-BY-4.0", attribution="Bench")
    return lake


def payload(count: int, seed: int) -> list[bytes]:
    import hashlib

    block = hashlib.shake_256(f"record-{seed}".encode()).digest(count * SIZE)
    return [block[i * SIZE:(i + 1) * SIZE] for i in range(count)]


def record_once(lake: Any, count: int, seed: int) -> tuple[float, Any]:
    """Capture one run with ``count`` outputs; seconds from block exit to return."""
    import time

    blobs = payload(count, seed)
    manager = lake.capture("parts", "pipelines/split", commit=COMMIT, params={"parts": count})
    run = manager.__enter__()
    run.use("data/raw/parts/source.bin")
    for index, blob in enumerate(blobs):
        (run.artifacts / f"part-{index:05d}.bin").write_bytes(blob)
    start = time.perf_counter()
    manager.__exit__(None, None, None)
    return time.perf_counter() - start, run


def run(out: Path, *, quick: bool = False) -> tuple[list[Row], dict[str, Any]]:
    from kfm_prov.lake import Lake

    count = 1000 if quick else FILES
    lake = make_lake(out / "record-lake")
    log(f"recording runs with {count} x 4 KiB outputs")
    times: list[float] = []
    last = None
    for seed in range(3 if quick else 5):
        seconds, last = record_once(lake, count, seed)
        times.append(seconds)
    rows = [Row(f"record a run with {count:,} x 4 KiB outputs", f"{median(times):.3f} s",
                "<= 0.5 s", at_most(median(times), 0.5, "s"),
                f"block exit to return, median of {len(times)}; runs: "
                + ", ".join(f"{t:.2f}" for t in times))]

    log("re-verifying them through the digest cache")
    lake = Lake.open(lake.root)
    rel_dir = last.rel_dir
    names = sorted(p.name for p in (lake.root / rel_dir / "artifacts").iterdir())
    cache = lake.digest_cache

    def items() -> list[tuple[str, Path]]:
        rels = [f"{rel_dir}/artifacts/{name}" for name in names]
        return [(rel, lake.root / rel) for rel in rels]

    pending: list[list[tuple[str, Path]]] = []
    durations = repeat(lambda: cache.digests(pending.pop()), 7,
                       setup=lambda: pending.append(items()), warmup=1)
    rate = len(names) / median(durations)
    rows.append(Row(f"re-verify {len(names):,} unchanged files via the digest cache",
                    f"{rate:,.0f} files/s", ">= 200,000 files/s", at_least(rate, 200_000),
                    "DigestCache.digests: stat + cache row per file; median of 7"))
    return rows, {"record_seconds": median(times), "reverify_rate": rate,
                  "record_dir": str(lake.root / rel_dir / "artifacts")}
