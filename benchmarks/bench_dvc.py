"""DVC side by side: the same 1 GiB file and the same 10,000 small files.

``dvc add`` against our record of a run with those outputs, ``dvc status`` against our
re-verification of them through the digest cache. DVC runs from its own virtualenv
(``<out>/dvc-venv``, created with ``pip install dvc`` on first use) so that its many
dependencies never touch the project's environment; it is not a dependency of kfm-prov.
Its figures are the command's wall time as a user sees it (``dvc --version`` is shown
for its start-up alone); ours are the library calls. Files are hard links of the ones the
other benchmarks wrote, so both sides read the same bytes from a warm page cache.
DVC's cache link type is its default (reflink, else copy: a copy on ext4).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import Row, log, median

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def ensure_dvc(out: Path) -> tuple[Path | None, str]:
    """The ``dvc`` executable, installing it into its own virtualenv if needed."""
    venv = out / "dvc-venv"
    dvc = venv / "bin" / "dvc"
    if dvc.exists():
        return dvc, ""
    log("installing DVC into its own virtualenv (pip install dvc)")
    try:
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True,
                       capture_output=True, timeout=300)
        # Few retries and a short timeout: offline, this fails in seconds and the
        # comparison is skipped with the reason, instead of pip retrying for minutes.
        subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q",
                        "--retries", "1", "--timeout", "30", "dvc"],
                       check=True, capture_output=True, timeout=900)
    except (subprocess.SubprocessError, OSError) as exc:
        shutil.rmtree(venv, ignore_errors=True)
        detail = getattr(exc, "stderr", b"") or b""
        return None, f"pip install dvc failed: {detail.decode(errors='replace')[-200:] or exc}"
    return (dvc, "") if dvc.exists() else (None, "pip install dvc gave no dvc command")


def _dvc(dvc: Path, repo: Path, *args: str) -> float:
    start = time.perf_counter()
    subprocess.run([str(dvc), *args], cwd=repo, check=True, capture_output=True, timeout=900,
                   env={**os.environ, "DVC_NO_ANALYTICS": "1"})
    return time.perf_counter() - start


def _repo(base: Path, files: list[Path], name: str, dvc: Path) -> Path:
    """A fresh DVC repository holding hard links of ``files`` under ``name``."""
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    _dvc(dvc, base, "init", "--no-scm", "-q")
    target = base / name
    if len(files) == 1 and files[0].is_file() and not name.endswith("/"):
        os.link(files[0], target)
    else:
        target.mkdir()
        for path in files:
            os.link(path, target / path.name)
    return base


def _ours_record_big(out: Path, big: Path, times: int) -> list[float]:
    from benchmarks.bench_record import make_lake

    lake = make_lake(out / "dvc-ours-lake")
    results = []
    for _ in range(times):
        manager = lake.capture("parts", "pipelines/copy", commit=COMMIT)
        run = manager.__enter__()
        run.use("data/raw/parts/source.bin")
        os.link(big, run.output("big.bin"))
        start = time.perf_counter()
        manager.__exit__(None, None, None)
        results.append(time.perf_counter() - start)
    return results


def _ours_raw_add(out: Path, big: Path, times: int) -> list[float]:
    from benchmarks.bench_hashing import _fresh_lake, _kfm

    root = out / "dvc-ours-raw"
    results = []
    for _ in range(times):
        _fresh_lake(root, big)
        results.append(_kfm(root, "raw", "add", str(root / "data/raw/bench/big.bin"),
                            "--license", "CC-BY-4.0", "--attribution", "Bench"))
    shutil.rmtree(root, ignore_errors=True)
    return results


def _ours_reverify(lake_root: Path, rels: list[str], times: int) -> list[float]:
    from kfm_prov.lake import Lake

    cache = Lake.open(lake_root).digest_cache
    results = []
    for _ in range(times + 1):
        items = [(rel, lake_root / rel) for rel in rels]
        start = time.perf_counter()
        cache.digests(items)
        results.append(time.perf_counter() - start)
    return results[1:]


def _pair(label: str, theirs: list[float], ours: list[float], what_ours: str) -> Row:
    t, o = median(theirs), median(ours)
    return Row(label, f"DVC {t:.3f} s / ours {o:.3f} s = {t / o:.1f}x", "ratio (info)",
               "ours faster" if o < t else "DVC faster",
               f"{what_ours}; medians of {len(theirs)} (DVC) and {len(ours)} (ours)")


def run(out: Path, *, quick: bool = False, ours: dict[str, Any] | None = None) -> list[Row]:
    dvc, problem = ensure_dvc(out)
    if dvc is None:
        return [Row("DVC comparison", "not run", "ratio (info)", f"skipped: {problem}")]
    version = subprocess.run([str(dvc), "--version"], capture_output=True, text=True,
                             check=False).stdout.strip()
    startup = [_dvc(dvc, out, "--version") for _ in range(3)]
    rows = [Row(f"DVC {version}: start-up (dvc --version)", f"{median(startup):.3f} s",
                "—", "info", "included in every DVC figure below")]
    repeat = 2 if quick else 3
    big = out / "hash" / "big.bin"
    if big.is_file():
        log("DVC: dvc add / dvc status of the 1 GiB file")
        adds, statuses = [], []
        for _ in range(repeat):
            repo = _repo(out / "dvc-big", [big], "big.bin", dvc)
            adds.append(_dvc(dvc, repo, "add", "-q", "big.bin"))
        for _ in range(repeat):
            statuses.append(_dvc(dvc, repo, "status", "-q"))
        shutil.rmtree(out / "dvc-big", ignore_errors=True)
        log("ours: record a run whose output is the 1 GiB file, then re-verify it")
        recorded = _ours_record_big(out, big, repeat)
        lake_root = out / "dvc-ours-lake"
        rel = next(p for p in sorted(lake_root.glob("data/work/runs/parts/*/artifacts/big.bin")))
        rels = [rel.relative_to(lake_root).as_posix()]
        size = big.stat().st_size >> 20
        rows.append(_pair(f"{size} MiB file: dvc add vs record", adds, recorded,
                          "ours: lake.capture block exit to return (hash, receipts, PROV,"
                          " index)"))
        rows.append(_pair(f"{size} MiB file: dvc add vs kfm-prov raw add (new processes)",
                          adds, _ours_raw_add(out, big, repeat),
                          "both whole commands as a user types them, start-up included"))
        rows.append(_pair(f"{size} MiB file: dvc status vs re-verify", statuses,
                          _ours_reverify(lake_root, rels, 5), "ours: DigestCache.digests"))
    small_dir = Path((ours or {}).get("record_dir", ""))
    if ours and small_dir.is_dir():
        files = sorted(small_dir.iterdir())
        log(f"DVC: dvc add / dvc status of the same {len(files):,} small files")
        adds, statuses = [], []
        for _ in range(repeat):
            repo = _repo(out / "dvc-small", files, "parts/", dvc)
            adds.append(_dvc(dvc, repo, "add", "-q", "parts"))
        for _ in range(repeat):
            statuses.append(_dvc(dvc, repo, "status", "-q"))
        shutil.rmtree(out / "dvc-small", ignore_errors=True)
        lake_root = small_dir.parents[5]
        rels = [p.relative_to(lake_root).as_posix() for p in files]
        rows.append(_pair(f"{len(files):,} x 4 KiB: dvc add vs record", adds,
                          [ours["record_seconds"]],
                          "ours: the record figure above (its median)"))
        rows.append(_pair(f"{len(files):,} x 4 KiB: dvc status vs re-verify", statuses,
                          _ours_reverify(lake_root, rels, 5), "ours: DigestCache.digests"))
    return rows
