"""SQLite and PostgreSQL lineage indexes side by side: writers, trace, check, rebuild.

    python -m benchmarks.index_backends writers --pg URL [--seconds 5] [--writers 1,4,16,32]
    python -m benchmarks.index_backends lake --pg URL --root bench-out/lake

``writers``: N processes each index runs as fast as they can (``put_run``: one run and
11 input/output rows in one transaction, as a captured run does), into one SQLite file
or one PostgreSQL lake; prints runs per second and the latency of each write including
any wait (p50, p99, max). ``lake``: on the synthetic lake (``benchmarks.synthetic``),
for each backend: ``index rebuild`` from the files into an empty index (total, and the
part spent writing the index), ``trace`` p50 of sampled products and of the 1,000-run
chain, and ``check`` of the chain's last run (999 ancestor runs). Each task runs in its
own process (``benchmarks.lake_tasks``) with ``KFM_PROV_INDEX_URL`` set or not. The
figures are in docs/scaling.md; not part of ``make bench`` (it needs a server).
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import random
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import percentile
from benchmarks.sqlite_limits import _entry


def _open(backend: str, target: str, lake: str) -> Any:
    if backend == "sqlite":
        from kfm_prov.store.index import LineageIndex

        index: Any = LineageIndex(Path(target))
        index.conn  # noqa: B018 - open before the clock starts
        return index
    from kfm_prov.store.postgres import PgLineageIndex

    index = PgLineageIndex(target, lake)
    index.run("warm-up")  # connect and fill the pool before the clock starts
    return index


def _writer(args: tuple[str, str, str, float, int, float]) -> list[float]:
    backend, target, lake, seconds, seed, start_at = args
    rng = random.Random(seed)
    index = _open(backend, target, lake)
    time.sleep(max(0.0, start_at - time.time()))  # all writers start together
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


def writers(pg: str, workdir: Path, seconds: float, counts: list[int],
            backends: tuple[str, ...] = ("sqlite", "postgresql")) -> list[dict[str, Any]]:
    from kfm_prov.store.index import LineageIndex
    from kfm_prov.store.postgres import PgLineageIndex

    results = []
    for backend in backends:
        for procs in counts:
            lake = f"bench_writers_{procs}"
            if backend == "sqlite":
                target = str(workdir / f"writers-{procs}.sqlite")
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{target}{suffix}").unlink(missing_ok=True)
                created = LineageIndex(Path(target))
                created.conn  # noqa: B018 - create the schema once
                # and close it: a connection inherited across fork and closed in a child
                # drops that child's POSIX locks on the file (a corrupt index at 32 writers)
                created.close()
            else:
                target = pg
                index = PgLineageIndex(pg, lake)
                index.open()
                index.drop()
                index.open()  # a fresh, empty schema; no pool in this process
            start_at = time.time() + 2.0 + procs * 0.05
            with multiprocessing.get_context("fork").Pool(procs) as pool:
                per = pool.map(_writer, [(backend, target, lake, seconds, p, start_at)
                                         for p in range(procs)])
            latencies = [t for chunk in per for t in chunk]
            results.append({"backend": backend, "writers": procs,
                            "runs_per_s": round(len(latencies) / seconds),
                            "p50_ms": round(percentile(latencies, 0.5) * 1e3, 1),
                            "p99_ms": round(percentile(latencies, 0.99) * 1e3, 1),
                            "max_ms": round(max(latencies) * 1e3, 1)})
            print(json.dumps(results[-1]), file=sys.stderr, flush=True)
            if backend == "sqlite":
                for suffix in ("", "-wal", "-shm"):
                    Path(f"{target}{suffix}").unlink(missing_ok=True)
            else:
                PgLineageIndex(pg, lake).drop()
    return results


def _task(root: Path, url: str | None, *args: str) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if k != "KFM_PROV_INDEX_URL"}
    if url is not None:
        env["KFM_PROV_INDEX_URL"] = url
    done = subprocess.run([sys.executable, "-m", "benchmarks.lake_tasks", *args, "--root",
                           str(root)], env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"lake_tasks {args} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def lake(pg: str, root: Path, count: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for backend, url in (("sqlite", None), ("postgresql", pg)):
        rebuild = _task(root, url, "rebuild", "--fresh")
        print(json.dumps({backend: {"rebuild": rebuild}}), file=sys.stderr, flush=True)
        trace = _task(root, url, "trace", "--count", str(count))
        check = _task(root, url, "check", "--repeat", "3")
        out[backend] = {"rebuild": rebuild, "trace": trace, "check": check}
        print(json.dumps({backend: out[backend]}), file=sys.stderr, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("task", choices=("writers", "lake"))
    parser.add_argument("--pg", required=True, help="a database the benchmark may write to")
    parser.add_argument("--root", type=Path, default=Path("bench-out/lake"))
    parser.add_argument("--workdir", type=Path, default=Path("bench-out/backends"))
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--writers", default="1,4,16,32")
    parser.add_argument("--count", type=int, default=100)
    parser.add_argument("--backends", default="sqlite,postgresql")
    args = parser.parse_args(argv)
    args.workdir.mkdir(parents=True, exist_ok=True)
    if args.task == "writers":
        out: Any = writers(args.pg, args.workdir, args.seconds,
                           [int(n) for n in args.writers.split(",")],
                           tuple(args.backends.split(",")))
    else:
        out = lake(args.pg, args.root, args.count)
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
