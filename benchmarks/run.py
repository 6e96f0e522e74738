"""``make bench``: every figure of SPEC §8 with its target, and DVC side by side, in one table.

    python -m benchmarks.run                 # the whole thing (~10 min on 2 cores)
    python -m benchmarks.run --quick         # small sizes, a smoke test (~1 min)
    python -m benchmarks.run --only lake     # one section: hashing record captured export
                                             # lake site openlineage attest dvc

Progress goes to stderr, the table to stdout (and ``--json FILE`` writes the rows).
Generated data (the 1 GiB files, the synthetic lake, DVC's virtualenv) is kept under
``--out`` (default ``bench-out/``, ignored by git) and reused by the next run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

from benchmarks.harness import REPO, Row, load_average, log, print_table

SECTIONS = ("hashing", "record", "captured", "export", "lake", "site", "openlineage", "attest",
            "dvc")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "bench-out")
    parser.add_argument("--runs", type=int, default=None,
                        help="runs in the synthetic lake (default 100,000; 3,000 with --quick)")
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke test")
    parser.add_argument("--only", action="append", choices=SECTIONS)
    parser.add_argument("--no-dvc", action="store_true", help="skip the DVC comparison")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args(argv)
    sections = args.only or [s for s in SECTIONS if not (s == "dvc" and args.no_dvc)]
    runs = args.runs or (3000 if args.quick else 100_000)
    out = args.out.resolve()
    out.mkdir(parents=True, exist_ok=True)
    compiled = compile_bytecode()
    began = time.perf_counter()
    load_before = load_average()
    rows: list[Row] = []
    record_info: dict = {}
    if "hashing" in sections:
        from benchmarks import bench_hashing

        rows += bench_hashing.run(out, quick=args.quick)
    if "record" in sections:
        from benchmarks import bench_record

        more, record_info = bench_record.run(out, quick=args.quick)
        rows += more
    if "captured" in sections:
        from benchmarks import bench_captured

        rows += bench_captured.run(out, quick=args.quick)
    if "export" in sections:
        from benchmarks import bench_export

        rows += bench_export.run(out, quick=args.quick)
    if "lake" in sections:
        from benchmarks import bench_lake

        rows += bench_lake.run(out, runs=runs, quick=args.quick,
                               rebuilds=1 if args.quick else 3)
    if "site" in sections:
        from benchmarks import bench_site

        rows += bench_site.run(out, runs=min(runs, 10_000), quick=args.quick)
    if "openlineage" in sections:
        from benchmarks import bench_openlineage

        rows += bench_openlineage.run(out, quick=args.quick)
    if "attest" in sections:
        from benchmarks import bench_attest

        rows += bench_attest.run(out, quick=args.quick)
    if "dvc" in sections:
        from benchmarks import bench_dvc

        rows += bench_dvc.run(out, quick=args.quick, ours=record_info)
    elapsed = time.perf_counter() - began
    log(f"done in {elapsed:.0f} s")
    print(f"kfm-prov benchmarks (SPEC §8) — {platform.python_implementation()}"
          f" {platform.python_version()}, {len(os.sched_getaffinity(0))} CPUs,"
          f" {time.strftime('%Y-%m-%d %H:%M')}, {elapsed / 60:.1f} min in all;"
          f" load average {load_before} before, {load_average()} after; {compiled}")
    print_table(rows)
    if args.json:
        args.json.write_text(json.dumps([r.to_dict() for r in rows], indent=2) + "\n",
                             encoding="utf-8")
    return 0


def compile_bytecode() -> str:
    """Write kfm-prov's bytecode, as ``pip install`` does, before any process is timed.

    With ``PYTHONDONTWRITEBYTECODE`` set (as on some CI machines) and no ``__pycache__``,
    every new process would compile ~150 modules from source first, a third of a second
    no installed kfm-prov pays.
    """
    import compileall

    ok = compileall.compile_dir(REPO / "kfm_prov", quiet=1, force=False)
    return "bytecode compiled" if ok else "bytecode NOT compiled (start-up figures include it)"


if __name__ == "__main__":
    sys.exit(main())
