"""The benchmarks' synthetic lake: deterministic from its seed, and made of real receipts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.synthetic import SUMMARY, Shape, generate
from kfm_prov.core.validation import RUN_RECEIPTS, validate_data
from kfm_prov.lake import Lake
from kfm_prov.prov.document import build_run_prov
from kfm_prov.store.evidence import REPORT_FILE
from kfm_prov.store.rebuild import iter_run_dirs
from kfm_prov.store.receipts import load_run_receipts
from tests.conftest import snapshot

SHAPE = Shape(runs=80, seed=3, families=2, raw_per_family=6, chain=6, ref_runs=2)


@pytest.fixture(scope="module")
def twice(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, dict]:
    base = tmp_path_factory.mktemp("synthetic")
    first = generate(base / "a", SHAPE, workers=1)
    generate(base / "b", SHAPE, workers=2)
    return base / "a", base / "b", first


def _tree(root: Path) -> dict[str, str]:
    return {k: v for k, v in snapshot(root).items()
            if not k.startswith("data/work/cache") and k != SUMMARY}


def test_same_seed_gives_the_same_bytes(twice: tuple[Path, Path, dict]) -> None:
    a, b, _ = twice
    assert _tree(a) == _tree(b)
    summaries = [json.loads((root / SUMMARY).read_text()) for root in (a, b)]
    for summary in summaries:
        summary.pop("seconds")
    assert summaries[0] == summaries[1]


def test_another_seed_gives_another_lake(tmp_path: Path, twice: tuple[Path, Path, dict]) -> None:
    other = Shape(**{**SHAPE.__dict__, "seed": 4})
    generate(tmp_path / "c", other, workers=1)
    assert _tree(tmp_path / "c") != _tree(twice[0])


def test_the_shape_is_what_was_asked(twice: tuple[Path, Path, dict]) -> None:
    _, _, summary = twice
    assert summary["runs"] == len(iter_run_dirs(Lake.open(twice[0]).config))
    assert SHAPE.runs - SHAPE.family_count() <= summary["runs"] <= SHAPE.runs
    assert summary["entities"] > summary["runs"] * 5  # ~10 outputs a run
    assert summary["trace_targets"]


def test_receipts_validate_and_prov_is_what_kfm_prov_writes(
        twice: tuple[Path, Path, dict]) -> None:
    from kfm_prov.store.digests import sha256_bytes

    lake = Lake.open(twice[0])
    for run_dir in iter_run_dirs(lake.config)[::7]:
        for kind in RUN_RECEIPTS:
            data = json.loads((lake.root / run_dir / f"{kind}.json").read_text())
            assert validate_data(kind, data, file=kind) == []
        receipts = load_run_receipts(lake.root / run_dir, display=run_dir)
        report = sha256_bytes((lake.root / run_dir / REPORT_FILE).read_bytes())
        document, _ = build_run_prov(lake.config, receipts, run_dir, report)
        assert (lake.root / run_dir / "prov.json").read_bytes() == document


def test_the_index_builds_and_the_chain_passes_the_gate(twice: tuple[Path, Path, dict]) -> None:
    root, _, summary = twice
    lake = Lake.open(root)
    result = lake.rebuild_index()
    assert result.runs == summary["runs"] and not result.skipped
    report = lake.check(summary["chain_last_run"])
    assert report.ok, [f.one_line() for f in report.findings]
    assert len(report.runs) == SHAPE.chain


def test_every_raw_manifest_has_a_pinned_label_trail(twice: tuple[Path, Path, dict]) -> None:
    """Before: the trails raw add wrote carried the time it ran, so two lakes of one seed
    differed; without a trail, the gate would refuse every product (raw-labels-untracked)."""
    from kfm_prov.core.findings import Finding
    from kfm_prov.store.labels import check_trails
    from kfm_prov.store.raw import iter_recorded

    config = Lake.open(twice[0]).config
    recorded = [i for i in iter_recorded(config) if not isinstance(i, Finding)]
    checked = check_trails(config, recorded)
    assert recorded and checked.findings == []
    events = [e for trail in checked.trails.values() for e in trail]
    assert len(events) == len(recorded)
    assert {(e.action, e.by, e.at) for e in events} == {("add", "synthetic",
                                                         "2024-01-01T00:00:00.000000Z")}
