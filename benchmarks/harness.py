"""A small harness: medians over repeats, peak memory of a child process, one table.

No pytest-benchmark: the figures are few, some run in a child process (so that the
memory figure is theirs alone) and all end in one table with the SPEC §8 target.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Row:
    """One line of the table: a figure, what we measured, the target, and the verdict."""

    figure: str
    measured: str
    target: str = "—"
    verdict: str = ""  # "met", "MISSED by …", "info", "skipped: …"
    detail: str = ""

    def to_dict(self) -> dict[str, str]:
        return dict(self.__dict__)


def committed_code() -> dict[str, Any]:
    """``lake.capture`` options naming a real, committed pipeline file, so that the gate
    can pass (it asks git whether the commit holds the code that ran; a made-up commit is
    refused with ``unknown-commit``)."""
    from benchmarks.synthetic import PIPELINES, _pipeline_repository

    checkout, commit, _ = _pipeline_repository(PIPELINES)
    return {"commit": commit, "git_dir": Path(checkout),
            "entry": Path(checkout) / "pipeline.py"}


def log(message: str) -> None:
    """Progress on stderr; the table alone goes to stdout."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def repeat(fn: Callable[[], Any], times: int, *, setup: Callable[[], Any] | None = None,
           warmup: int = 0) -> list[float]:
    """Durations of ``fn`` over ``times`` runs (``setup`` untimed before each)."""
    for _ in range(warmup):
        if setup:
            setup()
        fn()
    durations = []
    for _ in range(times):
        if setup:
            setup()
        durations.append(timed(fn))
    return durations


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q
    low, high = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (k - low)


def at_most(value: float, limit: float, unit: str, fmt: str = "{:.3g}") -> str:
    """Verdict for a figure that must stay under ``limit``."""
    if value <= limit:
        return f"met ({limit / value:.2g}x margin)" if value > 0 else "met"
    return f"MISSED by {value / limit:.2g}x (+{fmt.format(value - limit)} {unit})"


def at_least(value: float, limit: float) -> str:
    """Verdict for a figure that must reach ``limit``."""
    if value >= limit:
        return f"met ({value / limit:.2g}x of target)"
    return f"MISSED: {value / limit:.0%} of target"


def child(module: str, *args: str, timeout: float = 1800) -> dict[str, Any]:
    """Run ``python -m <module> args`` and return the JSON it prints last.

    The child reports its own peak resident memory (see :func:`peak_rss_mib`); the
    harness adds ``tree_rss_mib``, the peak of the child and all its descendants (worker
    processes) together, sampled every 0.1 s from here, so the figure is the work's
    alone and includes its workers.
    """
    import tempfile

    with tempfile.TemporaryFile("w+") as out, tempfile.TemporaryFile("w+") as err:
        process = subprocess.Popen([sys.executable, "-m", module, *args], cwd=REPO, text=True,
                                   stdout=out, stderr=err,
                                   env={**os.environ, "PYTHONPATH": str(REPO)})
        deadline = time.monotonic() + timeout
        peak = 0.0
        while process.poll() is None:
            peak = max(peak, _tree_rss_kib(process.pid) / 1024)
            if time.monotonic() > deadline:
                process.kill()
            time.sleep(0.1)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    if process.returncode != 0:
        raise RuntimeError(f"{module} {' '.join(args)} failed ({process.returncode}):\n"
                           f"{stderr[-3000:]}")
    result: dict[str, Any] = json.loads(stdout.strip().splitlines()[-1])
    result["tree_rss_mib"] = max(peak, result.get("rss_mib", 0.0))
    return result


def _tree_rss_kib(root: int) -> int:
    """Resident memory of ``root`` and its descendants, in KiB (from ``/proc``)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    total, pending = 0, [root]
    while pending:
        pid = pending.pop()
        total += _rss_kib(pid)
        pending += children.get(pid, [])
    return total


def peak_rss_mib() -> float:
    """Peak resident set size of this process, in MiB.

    ``VmHWM`` of ``/proc/self/status``, the high-water mark of this process's own memory.
    Not ``ru_maxrss``: Linux carries it over ``execve`` from the forking parent, so a
    child of a large harness would report the harness's peak.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _parent(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return int(stat.read().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return None


def _rss_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii", errors="replace") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def cpu_seconds() -> float:
    """CPU time of this process and of its waited-for children (worker processes)."""
    import resource

    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def load_average() -> str:
    """The 1-minute load average: other work on the machine skews every figure."""
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


def print_table(rows: Sequence[Row], *, file: Any = None) -> None:
    out = file or sys.stdout
    headers = ("figure", "measured", "target", "verdict")
    cells = [headers] + [(r.figure, r.measured, r.target, r.verdict) for r in rows]
    widths = [max(len(c[i]) for c in cells) for i in range(4)]
    line = "+".join("-" * (w + 2) for w in widths)
    print(line, file=out)
    for index, cell in enumerate(cells):
        print(" | ".join(text.ljust(width) for text, width in zip(cell, widths, strict=True)),
              file=out)
        if index == 0:
            print(line, file=out)
    print(line, file=out)
    notes = [r for r in rows if r.detail]
    if notes:
        print("\nnotes:", file=out)
        for r in notes:
            print(f"  {r.figure}: {r.detail}", file=out)
