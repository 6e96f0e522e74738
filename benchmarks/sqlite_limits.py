"""Where a single SQLite lineage index starts to hurt: concurrent writers, and size.

    python -m benchmarks.sqlite_limits writers [--db FILE] [--seconds 5]
    python -m benchmarks.sqlite_limits reads --db bench-out/lake-.../lineage.sqlite

``writers``: 1, 2, 4, 8 and 16 processes each index runs (``LineageIndex.put_run``: one
``BEGIN IMMEDIATE`` transaction with a run and 11 io rows, as a captured run does) as
fast as they can into one WAL database; prints commits per second and the latency of a
commit including the wait for the write lock. ``reads``: point lookups by digest and
the closure query on an index of a given size. The numbers are the ones in
``docs/scaling.md``; not part of ``make bench`` (``--sqlite`` adds a short run of them).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import shutil
import sqlite3
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import percentile


def _entry(rng: random.Random, k: int) -> Any:
    from kfm_prov.store.index import IndexEntry, IoRow, RunRow

    run_id = f"W{os.getpid():07d}{k:018d}"
    run_dir = f"data/work/runs/bench/{run_id}"
    run = RunRow(run_id, "bench", "pipelines/bench", "success", "pass",
                 "2024-01-01T00:00:00.000000Z", "2024-01-01T00:00:10.000000Z", "0" * 40,
                 "sha256:" + "1" * 64, run_dir, "sha256:" + "2" * 64, 0)
    files = [IoRow(run_id, "in" if i < 3 else "out", f"{run_dir}/artifacts/f{i}.csv",
                   f"sha256:{rng.getrandbits(256):064x}",
                   "primary" if i < 3 else "intermediate",
                   "work", 4096, "text/csv") for i in range(11)]
    return IndexEntry(run, files)


def _writer(args: tuple[str, float, int]) -> list[float]:
    from kfm_prov.store.index import LineageIndex

    db, seconds, seed = args
    rng = random.Random(seed)
    for attempt in range(20):  # see docs/scaling.md: a burst of opens can see SQLITE_NOTADB
        index = LineageIndex(Path(db))
        try:
            index.conn  # noqa: B018 - open (and create) before the clock starts
            break
        except sqlite3.DatabaseError:
            index.close()
            time.sleep(0.05 * (attempt + 1))
    latencies = []
    end = time.perf_counter() + seconds
    k = 0
    while time.perf_counter() < end:
        entry = _entry(rng, k)
        start = time.perf_counter()
        index.put_run(entry)
        latencies.append(time.perf_counter() - start)
        k += 1
    index.close()
    return latencies


def writers(db: Path, seconds: float, counts: list[int]) -> list[dict[str, Any]]:
    results = []
    for procs in counts:
        target = db.parent / f"writers-{procs}.sqlite"
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
        if db.exists():
            shutil.copyfile(db, target)  # start from an index of that size
        from kfm_prov.store.index import LineageIndex

        LineageIndex(target).conn  # noqa: B018 - create the schema once
        with multiprocessing.get_context("fork").Pool(procs) as pool:
            per = pool.map(_writer, [(str(target), seconds, p) for p in range(procs)])
        latencies = [t for chunk in per for t in chunk]
        results.append({"writers": procs, "commits_per_s": len(latencies) / seconds,
                        "p50_ms": percentile(latencies, 0.5) * 1e3,
                        "p99_ms": percentile(latencies, 0.99) * 1e3,
                        "max_ms": max(latencies) * 1e3,
                        "index_mib": target.stat().st_size / 2**20})
        for suffix in ("", "-wal", "-shm"):
            Path(f"{target}{suffix}").unlink(missing_ok=True)
    return results


def reads(db: Path, count: int) -> dict[str, Any]:
    from kfm_prov.store.index import LineageIndex

    index = LineageIndex(db)
    conn = index.conn
    rows = conn.execute("SELECT COUNT(*) FROM io").fetchone()[0]
    digests = [r[0] for r in conn.execute(
        "SELECT digest FROM io WHERE direction = 'in' ORDER BY random() LIMIT ?", (count,))]
    times = []
    for digest in digests:
        start = time.perf_counter()
        index.producers([digest])
        times.append(time.perf_counter() - start)
    closures = []
    for digest in digests[:50]:
        start = time.perf_counter()
        index.closure_runs([], [digest])
        closures.append(time.perf_counter() - start)
    return {"io_rows": rows, "index_mib": db.stat().st_size / 2**20,
            "lookup_p50_us": statistics.median(times) * 1e6,
            "lookup_p99_us": percentile(times, 0.99) * 1e6,
            "closure_p50_ms": statistics.median(closures) * 1e3}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=("writers", "reads"))
    parser.add_argument("--db", type=Path, default=Path("bench-out/sqlite/empty.sqlite"))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", default="1,2,4,8,16")
    parser.add_argument("--count", type=int, default=2000)
    args = parser.parse_args(argv)
    args.db.parent.mkdir(parents=True, exist_ok=True)
    if args.task == "writers":
        out: Any = writers(args.db, args.seconds, [int(n) for n in args.writers.split(",")])
    else:
        out = reads(args.db, args.count)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
