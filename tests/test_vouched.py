"""``index rebuild`` skips the checks of runs vouched for with the same evidence (issue 17).

Counted, not timed: the schema check and the secrets scan are not called for a vouched
run, are called again when its evidence, or the rules, change, and with ``--full``. The
gate never relies on the vouched file.
"""

from __future__ import annotations

import cProfile
import pstats
import sqlite3
from collections.abc import Callable
from pathlib import Path

from kfm_prov.lake import Lake
from kfm_prov.store.evidence import evidence_digest, evidence_files
from kfm_prov.store.vouched import VOUCHED_FILE, versions
from tests.conftest import Chain, CliInvoker

TOKEN = "ghp_" + "a" * 36


def _calls(action: Callable[[], object]) -> dict[str, int]:
    """How many runs were schema-checked and scanned.

    A run's schema check is three ``validate_data`` calls made by ``parse_run_receipts``
    (one per receipt; raw manifests are checked elsewhere and not counted).
    """
    profile = cProfile.Profile()
    profile.enable()
    action()
    profile.disable()
    counts = {"schema_checks": 0, "scan_evidence": 0}
    for (_file, _line, name), (*_rest, callers) in pstats.Stats(profile).stats.items():  # type: ignore[attr-defined]
        if name == "scan_evidence":
            counts[name] += sum(c[1] for c in callers.values())
        elif name == "validate_data":
            checks = sum(c[1] for (_f, _l, caller), c in callers.items()
                         if caller == "parse_run_receipts")
            assert checks % 3 == 0
            counts["schema_checks"] += checks // 3
    return counts


def _vouched(lake: Lake) -> list[tuple]:
    with sqlite3.connect(lake.config.dir("cache") / VOUCHED_FILE) as conn:
        return conn.execute("SELECT run_dir, evidence, checker, scanner, secrets FROM vouched"
                            " ORDER BY run_dir").fetchall()


def test_a_second_rebuild_checks_nothing_unchanged(lake: Lake, chain: Chain) -> None:
    first = _calls(lake.rebuild_index)
    assert first["schema_checks"] == 2 and first["scan_evidence"] == 2
    rows = _vouched(lake)
    assert [r[0] for r in rows] == sorted([chain.a.rel_dir, chain.b.rel_dir])
    assert {(r[2], r[3]) for r in rows} == {versions()}
    again = _calls(lake.rebuild_index)
    assert again == {"schema_checks": 0, "scan_evidence": 0}
    assert [r.run_id for r in lake.runs()] == [chain.a.run_id, chain.b.run_id]
    full = _calls(lambda: lake.rebuild_index(full=True))
    assert full["schema_checks"] == 2 and full["scan_evidence"] == 2


def test_changed_evidence_is_checked_again(lake: Lake, chain: Chain) -> None:
    lake.rebuild_index()
    with (lake.root / chain.b.rel_dir / "logs" / "run.log").open("a") as log:
        log.write(f"token: {TOKEN}\n")
    assert _calls(lake.rebuild_index)["scan_evidence"] >= 1
    assert lake.resolve_run(chain.b.run_id).secrets == 1
    assert lake.resolve_run(chain.a.run_id).secrets == 0


def test_new_rules_check_every_run_again(lake: Lake, chain: Chain) -> None:
    lake.rebuild_index()
    with sqlite3.connect(lake.config.dir("cache") / VOUCHED_FILE) as conn:
        conn.execute("UPDATE vouched SET scanner = 'an older scanner'")
    assert _calls(lake.rebuild_index)["scan_evidence"] == 2
    assert {(r[2], r[3]) for r in _vouched(lake)} == {versions()}


def test_the_cli_rebuild_has_full(run_cli: CliInvoker, lake: Lake, chain: Chain) -> None:
    assert run_cli("index", "rebuild", "--full").exit_code == 0
    assert len(_vouched(lake)) == 2


def test_the_gate_does_not_trust_the_vouched_file(lake: Lake, chain: Chain,
                                                  run_cli: CliInvoker) -> None:
    """A vouched row forged to match tampered evidence (no secrets) does not fool the gate."""
    lake.rebuild_index()
    log = lake.root / chain.b.rel_dir / "logs" / "extra.log"
    log.write_text(f"token: {TOKEN}\n")
    fresh = evidence_digest(lake.config, evidence_files(lake.config, chain.b.rel_dir))
    with sqlite3.connect(lake.config.dir("cache") / VOUCHED_FILE) as conn:
        conn.execute("UPDATE vouched SET evidence = ?, secrets = 0 WHERE run_dir = ?",
                     (fresh, chain.b.rel_dir))
    result = run_cli("check", chain.b.run_id, "--json", expect=1)
    assert "secret-in-log" in result.output


def test_a_vouched_file_that_is_not_a_database_costs_a_full_check(lake: Lake,
                                                                 chain: Chain) -> None:
    lake.rebuild_index()
    path: Path = lake.config.dir("cache") / VOUCHED_FILE
    for extra in ("-wal", "-shm"):
        Path(f"{path}{extra}").unlink(missing_ok=True)
    path.write_bytes(b"not sqlite at all" * 100)
    assert _calls(lake.rebuild_index)["scan_evidence"] == 2
    assert len(lake.runs()) == 2


_OPENED: list[str] = []
_RECORDING: list[bool] = []


def _audit(event: str, args: tuple) -> None:
    if event == "open" and _RECORDING and isinstance(args[0], str | Path):
        _OPENED.append(str(args[0]))


def test_a_rebuild_reads_each_evidence_file_once(lake: Lake, chain: Chain) -> None:
    """Hashed, parsed and scanned from one read: receipts and logs are opened once each.

    ``store.rebuild.rebuild_index`` itself: ``Lake.rebuild_index`` first reads run
    records to find dead runs, which is not the rebuild's reading.
    """
    import sys

    from kfm_prov.store.rebuild import rebuild_index

    if _audit not in getattr(test_a_rebuild_reads_each_evidence_file_once, "hooked", []):
        sys.addaudithook(_audit)  # hooks cannot be removed: this one records only below
        test_a_rebuild_reads_each_evidence_file_once.hooked = [_audit]  # type: ignore[attr-defined]
    for full in (True, False):
        _OPENED.clear()
        _RECORDING.append(True)
        try:
            rebuild_index(lake.config, full=full)
        finally:
            _RECORDING.clear()
        for run in (chain.a, chain.b):
            evidence = [str(lake.root / rel) for rel in evidence_files(lake.config, run.rel_dir)]
            assert len(evidence) >= 5  # three receipts, prov.json, logs
            assert sorted(p for p in _OPENED if p in evidence) == sorted(evidence)
