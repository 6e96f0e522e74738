"""Lakes built the way users build them, measured the way users meet the tool.

Every run here is captured with ``lake.capture`` (receipts, PROV and index written by
kfm-prov itself, not synthesised), and every command is a new ``kfm-prov`` process, so
interpreter start-up and imports count as they do for a user:

- a chain of N captured runs (raw → run 1 → run 2 → … → run N's product): ``check`` of
  the last run and ``trace PRODUCT --format json``;
- a fan-in of N captured runs into one product (N runs each make a part, one run joins
  them): ``check`` and ``trace`` of the join;
- cold start of ``runs``, ``show``, ``check`` and ``trace`` on a small lake;
- one ``lake.capture`` block writing 10,000 × 4 KiB outputs through ``run.output``: the
  whole block, outputs included.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Row, at_most, log, median

COMMIT = "0123456789abcdef0123456789abcdef01234567"
GEOJSON = ('{"type": "FeatureCollection", "features": [{"type": "Feature", "properties": {},'
           ' "geometry": {"type": "Point", "coordinates": [-97.5, 38.5]}}]}')


def _lake(root: Path) -> Any:
    from kfm_prov.lake import Lake

    if root.exists():
        shutil.rmtree(root)
    lake = Lake.init(root)
    source = root / "data/raw/bench/source.csv"
    source.parent.mkdir(parents=True)
    source.write_text("id\n1\n")
    lake.raw_add([source], license="CC-BY-4.0", attribution="Bench", sensitivity="public")
    return lake


def build_chain(root: Path, length: int) -> tuple[str, str]:
    """raw → 1 → … → ``length``; returns (last run id, its product path)."""
    lake = _lake(root)
    previous: Any = root / "data/raw/bench/source.csv"
    for number in range(length):
        last = number == length - 1
        with lake.capture("bench", f"pipelines/step-{number % 10}", commit=COMMIT) as run:
            run.use(previous)
            name = "product.geojson" if last else "step.csv"
            out = run.output(name, role="product" if last else "intermediate",
                             sensitivity="public")
            out.write_text(GEOJSON if last else f"id\n{number}\n")
        previous = out
    return run.run_id, f"{run.rel_dir}/artifacts/product.geojson"


def build_fan_in(root: Path, width: int) -> tuple[str, str]:
    """``width`` runs each make a part; one run joins them into the product."""
    lake = _lake(root)
    parts = []
    for number in range(width):
        with lake.capture("bench", "pipelines/part", commit=COMMIT) as run:
            run.use(root / "data/raw/bench/source.csv")
            part = run.output(f"part-{number}.csv", sensitivity="public")
            part.write_text(f"id\n{number}\n")
        parts.append(part)
    with lake.capture("bench", "pipelines/join", commit=COMMIT) as join:
        for part in parts:
            join.use(part)
        join.output("product.geojson", role="product", sensitivity="public").write_text(GEOJSON)
    return join.run_id, f"{join.rel_dir}/artifacts/product.geojson"


def cli_seconds(root: Path, *args: str, repeats: int = 3) -> float:
    """Median wall time of ``kfm-prov ARGS`` as a new process in the lake."""
    command = [sys.executable, "-m", "kfm_prov.cli", "--root", str(root), *args]
    durations = []
    for _ in range(repeats):
        started = time.perf_counter()
        done = subprocess.run(command, capture_output=True, check=False)
        durations.append(time.perf_counter() - started)
        if done.returncode not in (0, 1):
            raise RuntimeError(f"{' '.join(args)}: {done.stderr.decode()[:300]}")
    return median(durations)


def capture_many_outputs(root: Path, files: int) -> float:
    """Seconds for one capture block that writes ``files`` × 4 KiB through run.output."""
    lake = _lake(root)
    blob = os.urandom(4096)
    started = time.perf_counter()
    with lake.capture("bench", "pipelines/split", commit=COMMIT) as run:
        run.use(root / "data/raw/bench/source.csv")
        for number in range(files):
            run.output(f"part-{number:05d}.bin").write_bytes(blob)
    return time.perf_counter() - started


def run(out: Path, *, quick: bool = False) -> list[Row]:
    size = 100 if quick else 1000
    rows: list[Row] = []
    for shape, build in (("chain", build_chain), ("fan-in", build_fan_in)):
        root = out / f"captured-{shape}-{size}"
        log(f"capturing a {shape} of {size} runs")
        started = time.perf_counter()
        run_id, product = build(root, size)
        built = time.perf_counter() - started
        check = cli_seconds(root, "check", run_id)
        trace = cli_seconds(root, "trace", product, "--format", "json")
        rows += [
            Row(f"check, captured {shape} of {size} runs (new process)", f"{check:.2f} s",
                "≤ 0.5 s", at_most(check, 0.5, "s"), f"built in {built:.0f} s"),
            Row(f"trace --format json, captured {shape} of {size} runs (new process)",
                f"{trace:.2f} s", "≤ 0.3 s", at_most(trace, 0.3, "s")),
        ]
    small = out / "captured-small"
    run_id, product = build_chain(small, 3)
    for args in (("runs",), ("show", run_id), ("check", run_id),
                 ("trace", product, "--format", "json")):
        seconds = cli_seconds(small, *args, repeats=5)
        rows.append(Row(f"cold start: kfm-prov {args[0]} (3-run lake)", f"{seconds:.2f} s",
                        "≤ 0.3 s", at_most(seconds, 0.3, "s")))
    files = 1000 if quick else 10_000
    log(f"one capture block with {files} outputs")
    seconds = capture_many_outputs(out / "captured-outputs", files)
    target = 0.5 * files / 10_000
    rows.append(Row(f"lake.capture block, {files} × 4 KiB via run.output", f"{seconds:.2f} s",
                    f"≤ {target:g} s", at_most(seconds, target, "s")))
    return rows
