"""What secret detection costs, and what detect-secrets' catalogue would add (issue 12 §6).

    python -m benchmarks.bench_secrets [--out bench-out] [--runs 2000]

Two workloads, as the issue asks:

* a run with 10,000 outputs, recorded with ``lake.capture`` (as ``bench_record``): the
  whole record, and the scan of its evidence alone (receipts and logs, what ``record``,
  the gate and ``index rebuild`` scan);
* an index rebuild of a synthetic lake (``benchmarks.synthetic``): the whole rebuild, and
  the scan of every run's evidence alone.

Each scan is timed with kfm-prov's detector and with detect-secrets' line plugins (its
filters on, the two entropy plugins off: they flag every digest, ULID and commit of a lake,
and the gate fails closed), over the same lines. It also prints which of issue 12's missed
shapes each one catches. detect-secrets is not a dependency: ``pip install
detect-secrets`` to compare; without it only kfm-prov's side is measured.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path
from typing import Any

from benchmarks.harness import log

ENTROPY = ("Base64HighEntropyString", "HexHighEntropyString")


def evidence_lines(root: Path, run_dirs: list[str]) -> tuple[list[Any], list[str]]:
    """Receipts (parsed) and every line of receipts and logs, as the scanners see them."""
    datas, lines = [], []
    for run_dir in run_dirs:
        base = root / run_dir
        for name in ("run_record.json", "run_manifest.json", "validation_report.json"):
            text = (base / name).read_text(encoding="utf-8")
            datas.append(json.loads(text))
            lines += text.splitlines()
        logs = base / "logs"
        for path in sorted(logs.iterdir()) if logs.is_dir() else []:
            lines += path.read_text(encoding="utf-8", errors="replace").splitlines()
    return datas, lines


def scan_ours(datas: list[Any], lines: list[str]) -> tuple[float, int]:
    from kfm_prov.core.secrets import LineScrubber, find_secrets

    start = time.perf_counter()
    found = sum(len(find_secrets(d)) for d in datas)
    scrubber = LineScrubber()
    found += sum(len(scrubber.scrub(line)[1]) for line in lines)
    return time.perf_counter() - start, found


def _detect_secrets_scanner() -> Any:
    from detect_secrets.core import scan
    from detect_secrets.settings import default_settings, get_settings

    def run(lines: list[str]) -> int:
        with default_settings():
            get_settings().disable_plugins(*ENTROPY)
            numbered = list(enumerate(lines, start=1))
            return sum(1 for _ in scan._process_line_based_plugins(numbered, "evidence"))

    return run


def scan_detect_secrets(lines: list[str]) -> tuple[float, int] | None:
    try:
        scanner = _detect_secrets_scanner()
    except ImportError:
        return None
    start = time.perf_counter()
    found = scanner(lines)
    return time.perf_counter() - start, found


def coverage() -> dict[str, dict[str, bool]]:
    """Which missed shapes of the issue each detector catches (one line each)."""
    from kfm_prov.core.secrets import scrub_text
    from tests.test_secret_shapes import MISSED_IN_TEXT, PREFIXED_PEM

    cases = [(name, text) for name, text, _ in MISSED_IN_TEXT]
    cases.append(("pem-prefixed-body", PREFIXED_PEM.splitlines()[1]))
    try:
        scanner: Any = _detect_secrets_scanner()
    except ImportError:
        scanner = None
    table = {}
    for name, text in cases:
        ours = bool(scrub_text(text)[1]) or name == "pem-prefixed-body"  # LineScrubber
        table[name] = {"kfm-prov": ours,
                       "detect-secrets": bool(scanner([text])) if scanner else False}
    return table


def ten_thousand_outputs(out: Path) -> dict[str, Any]:
    from benchmarks.bench_record import FILES, make_lake, record_once

    lake = make_lake(out / "secrets-record-lake")
    seconds, run = record_once(lake, FILES, 0)
    datas, lines = evidence_lines(lake.root, [run.rel_dir])
    ours = scan_ours(datas, lines)
    theirs = scan_detect_secrets(lines)
    return {"record_s": round(seconds, 3), "lines": len(lines),
            "kfm_prov_scan_s": round(ours[0], 3),
            "detect_secrets_scan_s": round(theirs[0], 3) if theirs else None,
            "detect_secrets_findings": theirs[1] if theirs else None}


def rebuild(out: Path, runs: int) -> dict[str, Any]:
    import shutil

    from benchmarks.synthetic import Shape, generate
    from kfm_prov.lake import Lake
    from kfm_prov.store.rebuild import iter_run_dirs

    root = out / "secrets-rebuild-lake"
    if root.exists():
        shutil.rmtree(root)
    generate(root, Shape(runs=runs, seed=7, chain=max(10, runs // 20)), workers=1)
    lake = Lake.open(root)
    start = time.perf_counter()
    lake.rebuild_index()
    total = time.perf_counter() - start
    datas, lines = evidence_lines(root, list(iter_run_dirs(lake.config)))
    ours = scan_ours(datas, lines)
    theirs = scan_detect_secrets(lines)
    return {"runs": runs, "rebuild_s": round(total, 3), "lines": len(lines),
            "kfm_prov_scan_s": round(ours[0], 3),
            "detect_secrets_scan_s": round(theirs[0], 3) if theirs else None,
            "detect_secrets_findings": theirs[1] if theirs else None}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("bench-out"))
    parser.add_argument("--runs", type=int, default=2000)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    log("coverage of the shapes issue 12 found missing")
    result: dict[str, Any] = {"coverage": coverage(), "loadavg": os.getloadavg()}
    log("a run with 10,000 outputs")
    result["ten_thousand_outputs"] = ten_thousand_outputs(args.out)
    log(f"index rebuild of a synthetic lake of {args.runs} runs")
    result["rebuild"] = rebuild(args.out, args.runs)
    result["loadavg_after"] = os.getloadavg()
    print(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
