"""Hashing: one 1 GiB file against ``hashlib.file_digest``; many large files, 1 vs 2 workers.

Both sides read the same file from the page cache in the same run, alternating, so the
ratio is about the hashing loop and not the disk. Then the commands a user types, each a
new process with start-up included (SPEC §8, issue 17): ``raw add`` of the 1 GiB file,
``run`` with it as ``--input``, ``check`` of a run whose product it is (the gate hashes it
fresh), each against ``hashlib.file_digest`` of the same file; and ``promote`` of that
product (a reflink where the file system can, else a copy), with how often it was hashed.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Row, at_least, load_average, log, median, repeat

GIB = 1 << 30
BLOCK = 64 << 20


def make_file(path: Path, size: int, seed: int) -> Path:
    """A file of ``size`` pseudo-random bytes (kept between runs when the size matches)."""
    if path.is_file() and path.stat().st_size == size:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    block = hashlib.shake_256(f"kfm-bench-{seed}".encode()).digest(BLOCK)
    with open(path, "wb") as handle:
        written = 0
        while written < size:
            chunk = block[: min(BLOCK, size - written)]
            handle.write(chunk)
            written += len(chunk)
    return path


def _file_digest(path: Path) -> str:
    with open(path, "rb") as handle:
        return "sha256:" + hashlib.file_digest(handle, "sha256").hexdigest()


def run(out: Path, *, quick: bool = False) -> list[Row]:
    from kfm_prov.store.digests import hash_files, sha256_file

    rows: list[Row] = []
    size = (64 << 20) if quick else GIB
    big = make_file(out / "hash" / "big.bin", size, 1)
    os.sync()  # no write-back of freshly made files competing with the measurement
    label = "1 GiB" if size == GIB else f"{size >> 20} MiB"
    log(f"hashing one {label} file")
    assert sha256_file(big) == _file_digest(big)
    ours: list[float] = []
    theirs: list[float] = []
    for _ in range(3 if quick else 5):  # alternate, so that drift hits both alike
        theirs += repeat(lambda: _file_digest(big), 1)
        ours += repeat(lambda: sha256_file(big), 1)
    ratio = median(theirs) / median(ours)
    rows.append(Row(f"hash one {label} file (vs hashlib.file_digest)",
                    f"{size / median(ours) / 1e9:.2f} GB/s = {ratio:.2f}x file_digest"
                    f" ({size / median(theirs) / 1e9:.2f} GB/s)",
                    ">= 0.9x file_digest", at_least(ratio, 0.9),
                    f"median of {len(ours)} each, alternating, page cache warm"))

    rows += whole_process_rows(out, big, label, quick=quick)

    count, each = (4, 32 << 20) if quick else (8, 128 << 20)
    files = [make_file(out / "hash" / f"large-{k}.bin", each, 10 + k) for k in range(count)]
    os.sync()
    log(f"hashing {count} x {each >> 20} MiB on 1 and 2 workers")
    hash_files(files, workers=2)  # warm the page cache
    one: list[float] = []
    two: list[float] = []
    for _ in range(3 if quick else 5):  # alternate, so that drift hits both alike
        one += repeat(lambda: hash_files(files, workers=1), 1)
        two += repeat(lambda: hash_files(files, workers=2), 1)
    speedup = median(one) / median(two)
    total = count * each
    rows.append(Row(f"hash {count} x {each >> 20} MiB files, 2 workers vs 1",
                    f"{speedup:.2f}x ({total / median(two) / 1e9:.2f} vs"
                    f" {total / median(one) / 1e9:.2f} GB/s)",
                    ">= 1.6x one core", at_least(speedup, 1.6),
                    f"{len(os.sched_getaffinity(0))} CPUs available; median of {len(one)}"
                    f" each, alternating; load average {load_average()} (other work on"
                    " the second core caps this ratio near 1)"))
    return rows


# --- the commands, as new processes ------------------------------------------------------------

def _kfm(root: Path, *args: str, ok: tuple[int, ...] = (0,)) -> float:
    """Wall seconds of ``kfm-prov --root ROOT ARGS`` as a new process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("KFM_")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "kfm_prov.cli", "--root", str(root), *args],
                          env=env, capture_output=True, text=True, check=False)
    seconds = time.perf_counter() - started
    if done.returncode not in ok:
        raise RuntimeError(f"kfm-prov {' '.join(args)}: {done.stderr[-500:]}")
    return seconds


def _fresh_lake(root: Path, big: Path) -> Any:
    """A lake whose raw zone holds ``big`` (a hard link: the same bytes, page cache warm)."""
    from kfm_prov.lake import Lake

    if root.exists():
        shutil.rmtree(root)
    lake = Lake.init(root)
    target = root / "data/raw/bench/big.bin"
    target.parent.mkdir(parents=True)
    os.link(big, target)
    return lake


def _captured_product(lake: Any, big: Path, code: tuple[str, str, str]) -> str:
    """A run (committed code, so the gate can pass) whose product is ``big``; its id."""
    checkout, commit, _ = code
    source = lake.root / "data/raw/bench/source.csv"
    if not source.exists():
        source.write_text("id\n1\n")
        lake.raw_add([source], license="CC-BY-4.0", attribution="Bench", sensitivity="public")
    with lake.capture("bench", "pipelines/big", commit=commit, git_dir=Path(checkout),
                      entry=Path(checkout) / "pipeline.py") as run:
        run.use("data/raw/bench/source.csv")
        os.link(big, run.output("big.bin", role="product", sensitivity="public"))
    return str(run.run_id)


def _hashes_of(size: int, action: Any) -> tuple[int, Any]:
    """How many times ``action()`` hashed a file of ``size`` bytes (``sha256_file`` calls,
    and prehash's, counted by the interpreter's profile hook), and what it returned."""
    from kfm_prov.store import digests

    code = digests.sha256_file.__code__
    count = 0

    def watch(frame: Any, event: str, arg: Any) -> None:
        nonlocal count
        if event == "call" and frame.f_code is code:
            with contextlib.suppress(OSError, KeyError):
                count += os.stat(frame.f_locals["path"]).st_size == size

    sys.setprofile(watch)
    threading.setprofile(watch)  # the hashing pool's threads too
    try:
        result = action()
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    return count, result


def whole_process_rows(out: Path, big: Path, label: str, *, quick: bool) -> list[Row]:
    from benchmarks.synthetic import PIPELINES, _pipeline_repository

    size = big.stat().st_size
    repeats = 3 if quick else 5
    code = _pipeline_repository(PIPELINES)
    root = out / "hash-lake"
    log(f"raw add / run / check of the {label} file, new processes, x{repeats}")
    reference: list[float] = []
    times: dict[str, list[float]] = {"raw add": [], "run": [], "check": []}
    for _ in range(repeats):  # alternate, so that drift hits every side alike
        reference += repeat(lambda: _file_digest(big), 1)
        _fresh_lake(root, big)
        times["raw add"].append(_kfm(root, "raw", "add", str(root / "data/raw/bench/big.bin"),
                                     "--license", "CC-BY-4.0", "--attribution", "Bench"))
        times["run"].append(_kfm(root, "run", "-f", "bench", "-p", "pipelines/use-big",
                                 "-i", "data/raw/bench/big.bin", "--commit", code[1],
                                 "--git-dir", code[0], "--", "true"))
        run_id = _captured_product(_fresh_lake(root, big), big, code)
        times["check"].append(_kfm(root, "check", run_id, ok=(0, 1)))
    hashed = median(reference)
    rows = []
    for name, what in (("raw add", f"kfm-prov raw add of one {label} file"),
                       ("run", f"kfm-prov run with one {label} --input"),
                       ("check", f"kfm-prov check of a run whose product is {label}")):
        seconds = median(times[name])
        ratio = hashed / seconds
        verdict = at_least(ratio, 0.9) if size >= GIB else "info: the target is for 1 GiB"
        rows.append(Row(f"{what} (whole process)",
                        f"{seconds:.2f} s = {ratio:.2f}x file_digest ({hashed:.2f} s)",
                        ">= 0.9x file_digest", verdict,
                        f"start-up included; median of {repeats}, alternating with"
                        f" hashlib.file_digest in-process; page cache warm (the file is in"
                        f" {big.parent}); load average {load_average()}"))
    rows.append(_promote_row(out, big, label, code, quick=quick))
    return rows


def _promote_row(out: Path, big: Path, label: str, code: tuple[str, str, str], *,
                 quick: bool) -> Row:
    """``kfm-prov promote`` of a run whose product is the big file, as a new process;
    then once more in-process to count how often the product's bytes were hashed."""
    from kfm_prov.core import jsonio

    root = out / "promote-lake"
    repeats = 2 if quick else 3
    log(f"promote of a {label} product, new processes, x{repeats}")
    seconds, copies = [], []
    for _ in range(repeats):
        lake = _fresh_lake(root, big)
        run_id = _captured_product(lake, big, code)
        seconds.append(_kfm(root, "promote", run_id))
        probe = root / "clone-probe.bin"
        started = time.perf_counter()
        method = jsonio.clone_file(big, probe)  # what the promotion's staging does
        copies.append(time.perf_counter() - started)
        probe.unlink()
    lake = _fresh_lake(root, big)
    run_id = _captured_product(lake, big, code)
    hashes, _ = _hashes_of(big.stat().st_size, lambda: lake.promote(run_id))
    shutil.rmtree(root)
    return Row(f"kfm-prov promote of a {label} product (whole process)",
               f"{median(seconds):.2f} s ({method}; the {method} alone {median(copies):.2f} s)",
               "reflink where possible, never a link", "info",
               f"the product hashed {hashes} times in all (the gate's fresh hash and the"
               f" staged copy's verification: 2 expected); median of {repeats};"
               f" load average {load_average()}")
