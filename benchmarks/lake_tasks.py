"""Work on the synthetic lake, one task per child process so that its memory is its own.

    python -m benchmarks.lake_tasks rebuild --root R      # index rebuild from the files
    python -m benchmarks.lake_tasks trace --root R        # ancestry of sampled products
    python -m benchmarks.lake_tasks check --root R        # the gate on the chain's product
    python -m benchmarks.lake_tasks promote --root R      # promote the chain (set-up)

Each prints one JSON line: its timings and ``rss_mib``, the peak resident set size.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import cpu_seconds, peak_rss_mib, percentile
from benchmarks.synthetic import SUMMARY


def _summary(root: Path) -> dict[str, Any]:
    return json.loads((root / SUMMARY).read_text(encoding="utf-8"))


def rebuild(root: Path, fresh: bool, full: bool = False) -> dict[str, Any]:
    """Rebuild into the configured index (SQLite, or PostgreSQL with KFM_PROV_INDEX_URL);
    ``write_s`` is the part spent in ``replace_all`` (under the index's write lock);
    ``full`` re-checks every run (no vouched runs skipped)."""
    from kfm_prov.config import load_config
    from kfm_prov.store.rebuild import backend_for, rebuild_index

    config = load_config(root)
    db = config.dir("cache") / "lineage.sqlite"
    if fresh and config.index.url is None:
        for suffix in ("", "-wal", "-shm"):
            Path(f"{db}{suffix}").unlink(missing_ok=True)
    index: Any = backend_for(config)
    if fresh and config.index.url is not None:
        index.open()
        index.drop()
    index.needs_rebuild()
    replace_all = index.replace_all
    timed: dict[str, float] = {}

    def timed_replace(read: Any) -> Any:
        began = time.perf_counter()
        try:
            return replace_all(read)
        finally:
            timed["write_s"] = time.perf_counter() - began

    index.replace_all = timed_replace
    start = time.perf_counter()
    result = rebuild_index(config, index, full=full)
    seconds = time.perf_counter() - start
    stats = index.stats()
    index.close()
    return {"seconds": seconds, "write_s": timed.get("write_s"), "runs": result.runs,
            "raw_files": result.raw_files, "skipped": len(result.skipped),
            "db_mib": stats.bytes / 2**20, "rows": stats.rows,
            "rss_mib": peak_rss_mib(), "cpu_s": cpu_seconds()}


def trace(root: Path, count: int) -> dict[str, Any]:
    from kfm_prov.config import load_config
    from kfm_prov.store.lineage import ancestry
    from kfm_prov.store.rebuild import index_for

    config = load_config(root)
    summary = _summary(root)
    targets = summary["trace_targets"][:count]
    out: dict[str, Any] = {}
    with index_for(config) as index:
        ancestry(index, digests=[targets[0][2]])  # warm: imports, database pages
        times, sizes = [], []
        for _run_id, _path, digest in targets:
            start = time.perf_counter()
            graph = ancestry(index, digests=[digest])
            times.append(time.perf_counter() - start)
            sizes.append(graph.number_of_nodes())
        out["ancestry"] = _stats(times, sizes)
        chain = summary.get("chain_product")
        if chain:
            times, sizes = [], []
            for _ in range(5):
                start = time.perf_counter()
                graph = ancestry(index, digests=[chain[2]])
                times.append(time.perf_counter() - start)
                sizes.append(graph.number_of_nodes())
            out["ancestry_chain"] = _stats(times, sizes)
    from kfm_prov.lake import Lake

    lake = Lake.open(root)
    if hasattr(lake, "trace"):  # Lake.trace: target resolution, the walk, the Trace model
        lake.trace(targets[0][1])
        times, sizes = [], []
        for _run_id, path, _digest in targets:
            start = time.perf_counter()
            result = lake.trace(path)
            times.append(time.perf_counter() - start)
            sizes.append(len(result.nodes))
        out["trace"] = _stats(times, sizes)
    out["rss_mib"] = peak_rss_mib()
    return out


def _stats(times: list[float], sizes: list[int]) -> dict[str, Any]:
    return {"count": len(times), "p50_ms": percentile(times, 0.5) * 1e3,
            "p95_ms": percentile(times, 0.95) * 1e3, "max_ms": max(times) * 1e3,
            "nodes_p50": statistics.median(sizes), "nodes_max": max(sizes)}


def check(root: Path, repeat: int) -> dict[str, Any]:
    from kfm_prov.gate import evaluate
    from kfm_prov.lake import Lake

    lake = Lake.open(root)
    run_id = _summary(root)["chain_last_run"]
    evaluate(lake.config, run_id)  # the index is built and warm; so is the page cache
    times = []
    report = None
    for _ in range(repeat):
        start = time.perf_counter()
        report = lake.check(run_id)
        times.append(time.perf_counter() - start)
    assert report is not None
    failed = [c.id for c in report.checks if c.status != "pass"]
    return {"median_s": statistics.median(times), "times": times, "ok": report.ok,
            "failed": failed, "runs": len(report.runs), "entities": len(report.entities),
            "rss_mib": peak_rss_mib()}


def promote(root: Path) -> dict[str, Any]:
    from kfm_prov.lake import Lake
    from kfm_prov.store.certificate import certificates

    lake = Lake.open(root)
    if list(certificates(lake.config)):
        return {"promoted": False, "seconds": 0.0, "rss_mib": peak_rss_mib()}
    run_id = _summary(root)["chain_last_run"]
    start = time.perf_counter()
    result = lake.promote(run_id, version="v1", requested_by="bench")
    return {"promoted": True, "version": result.version,
            "seconds": time.perf_counter() - start, "rss_mib": peak_rss_mib()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=("rebuild", "trace", "check", "promote"))
    parser.add_argument("--root", type=Path, required=True)
    parser.add_argument("--fresh", action="store_true", help="rebuild: delete the index first")
    parser.add_argument("--full", action="store_true",
                        help="rebuild: re-check every run (ignore the vouched runs)")
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args(argv)
    if args.task == "rebuild":
        out = rebuild(args.root, args.fresh, args.full)
    elif args.task == "trace":
        out = trace(args.root, args.count)
    elif args.task == "check":
        out = check(args.root, args.repeat)
    else:
        out = promote(args.root)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
