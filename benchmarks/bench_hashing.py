"""Hashing: one 1 GiB file against ``hashlib.file_digest``; many large files, 1 vs 2 workers.

Both sides read the same file from the page cache in the same run, alternating, so the
ratio is about the hashing loop and not the disk.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

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
