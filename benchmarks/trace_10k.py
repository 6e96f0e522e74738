"""``kfm-prov trace`` on a synthetic lake of 10,000 runs: p50 over 20 products.

    python -m benchmarks.trace_10k                    # builds bench-out/trace-10k once
    python -m benchmarks.trace_10k --runs 100000 --out bench-out/trace-100k

The lake comes from ``benchmarks.synthetic`` (real receipts, ``--artifacts``: every work
file exists, so ``trace`` sees a healthy lake and ``--verify`` has bytes to hash). Timed
in one warm process, each of the 20 products three times: ``trace`` up from the product's
path (the library call, index open included), the same plus rendering the tree and the
JSON, ``--down`` from one of its raw sources, and ``--verify``; then the whole command as
a user runs it (a fresh ``kfm-prov trace --json`` process, interpreter start-up included).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


def _p50(times: list[float]) -> str:
    return f"{statistics.median(times) * 1e3:7.1f} ms (max {max(times) * 1e3:.1f})"


def _time(targets: list[str], call: Callable[[str], Any],
          rounds: int = 3) -> tuple[list[float], list[Any]]:
    """Every target ``rounds`` times (the machine is shared: one slow sample is noise)."""
    times, results = [], []
    for round_ in range(rounds):
        for target in targets:
            start = time.perf_counter()
            result = call(target)
            times.append(time.perf_counter() - start)
            if round_ == 0:
                results.append(result)
    return times, results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench-out" / "trace-10k")
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--count", type=int, default=20)
    args = parser.parse_args(argv)

    from benchmarks.synthetic import SUMMARY, Shape, generate

    root = args.out.resolve()
    if not (root / SUMMARY).exists():
        print(f"building a {args.runs}-run lake in {root} ...", file=sys.stderr)
        started = time.perf_counter()
        generate(root, Shape(runs=args.runs, artifacts=True), progress=True)
        print(f"built in {time.perf_counter() - started:.0f} s", file=sys.stderr)
    summary = json.loads((root / SUMMARY).read_text(encoding="utf-8"))
    targets = [path for _run, path, _digest in summary["trace_targets"][:args.count]]

    from kfm_prov.lake import Lake
    from kfm_prov.store.rebuild import index_for
    from kfm_prov.trace import render, render_tree, trace

    lake = Lake.open(root)
    config = lake.config
    with index_for(config) as index:  # an index built before timing, as on a live lake
        index.runs_by_id(["warm-up"])
    trace(config, targets[0])  # imports and page cache

    up, results = _time(targets, lambda t: trace(config, t))
    rendered, _ = _time(targets, lambda t: (render_tree(trace(config, t)),
                                            render(config, trace(config, t), "json")))
    raws = [next(n["raw"][0]["path"] for n in r.nodes.values()
                 if n["kind"] == "file" and n["raw"]) for r in results]
    down, downs = _time(raws, lambda t: trace(config, t, down=True))
    verified, checks = _time(targets, lambda t: trace(config, t, verify=True))
    env = {**os.environ, "KFM_PROV_ROOT": str(root)}
    cli = [sys.executable, "-m", "kfm_prov.cli", "trace", "--json"]
    command, _ = _time(targets[:10], lambda t: subprocess.run(
        [*cli, t], env=env, check=False, capture_output=True), rounds=1)

    sizes = [len(r.nodes) for r in results]
    print(f"lake: {summary['runs']} runs, {summary['entities']} entities, {root}")
    print(f"closure size (nodes): p50 {statistics.median(sizes):.0f}, max {max(sizes)};"
          f" ok {sum(r.ok for r in results)}/{len(results)};"
          f" verified ok {sum(r.ok for r in checks)}/{len(checks)}")
    print(f"trace (library, up)                 p50 {_p50(up)}")
    print(f"trace + tree + JSON rendering       p50 {_p50(rendered)}")
    print(f"trace --down from a raw source      p50 {_p50(down)}"
          f"  (nodes p50 {statistics.median(len(r.nodes) for r in downs):.0f})")
    print(f"trace --verify (re-hash closure)    p50 {_p50(verified)}")
    print(f"kfm-prov trace --json (new process) p50 {_p50(command)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
