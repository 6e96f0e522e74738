"""PROV-CONSTRAINTS on a valid chain of 10,000 records: seconds per check (target < 5 s).

    python -m benchmarks.constraints_10k

A guard against anything quadratic in ``kfm_prov.prov.constraints``; the test suite checks
the same document for correctness only (tests/test_constraints.py).
"""

from __future__ import annotations

import statistics
import time

from benchmarks.harness import load_average


def main() -> int:
    from kfm_prov.prov.constraints import check_constraints
    from tests.test_constraints import chain_document

    doc = chain_document(2000)
    times = []
    for _ in range(3):
        started = time.perf_counter()
        assert check_constraints(doc) == []
        times.append(time.perf_counter() - started)
    print(f"check_constraints, {len(doc.get_records())} records: p50"
          f" {statistics.median(times):.2f} s (max {max(times):.2f} s; target < 5 s),"
          f" load {load_average()}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
