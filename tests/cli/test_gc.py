"""`kfm-prov gc`: retention that never breaks a promoted product's lineage."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime, timedelta

import pytest

from kfm_prov.capture import Run
from kfm_prov.gc import apply_gc, plan_gc
from kfm_prov.lake import Lake
from kfm_prov.publish.promote import PromotionResult
from kfm_prov.store.certificate import verify_certificate
from kfm_prov.store.rebuild import rebuild_index
from tests.conftest import (
    CODE,
    GEOJSON,
    Chain,
    add_raw,
    make_chain,
    one_error_line,
    snapshot,
    write,
)

LATER = datetime.now(UTC) + timedelta(days=30)


def published(lake: Lake) -> dict[str, str]:
    """Everything gc must never touch: raw, processed, STAC, PROV and DCAT."""
    state = {}
    for zone in ("raw", "processed", "stac", "prov", "dcat"):
        state |= {f"{zone}/{k}": v for k, v in snapshot(lake.config.dir(zone)).items()}
    return state


@pytest.fixture
def history(lake: Lake, chain: Chain, promoted: PromotionResult) -> dict[str, Chain]:
    """glo v1 promoted from the oldest chain, then two newer re-runs of the whole chain.

    A naive "keep the newest run" would delete v1's runs and break its certificate.
    """
    write(chain.b.tmp / "scratch.bin", b"x" * 1000)
    second, third = rerun(lake, 2), rerun(lake, 3)
    write(third.a.tmp / "big.tmp", b"y" * 500)
    return {"v1": chain, "second": second, "third": third}


def rerun(lake: Lake, n: int, family: str = "glo") -> Chain:
    """The chain again on a new capture: other bytes all the way (lineage joins by digest)."""
    add_raw(lake, f"data/raw/{family}/patents-{n}.csv", f"id,name\n{n},Smith\n",
            sensitivity="public")
    return make_chain(lake, family, raw_name=f"patents-{n}.csv",
                      product=GEOJSON.replace('"properties": {}', f'"properties": {{"n": {n}}}'))


def actions(plan) -> dict[str, str]:
    return {e.run_id: e.action for e in plan.entries}


def test_naive_keep_last_would_break_the_promoted_lineage(lake: Lake, history,
                                                          promoted: PromotionResult) -> None:
    v1 = history["v1"]
    newest = sorted(lake.runs("glo"), key=lambda r: r.started_at)[-1:]
    naive = {r.run_id for r in lake.runs("glo")} - {r.run_id for r in newest}
    cert = json.loads((lake.root / promoted.certificate).read_text())
    closure = {r["run_id"] for r in cert["closure"]["runs"]}
    assert closure == {v1.a.run_id, v1.b.run_id} and closure <= naive


def test_plan_keeps_the_promoted_closure_and_the_lineage_of_kept_runs(
        lake: Lake, history, promoted: PromotionResult) -> None:
    v1, second, third = history["v1"], history["second"], history["third"]
    before = snapshot(lake.root)
    plan = plan_gc(lake.config, 1, now=LATER)
    assert snapshot(lake.root) == before  # a plan reads only
    assert actions(plan) == {
        v1.b.run_id: "delete-tmp",  # promoted: only its scratch space goes
        second.a.run_id: "delete-run", second.b.run_id: "delete-run",
        third.a.run_id: "delete-artifacts",  # upstream of the kept run: receipts stay
    }
    reasons = {p.run_id: p.reason for p in plan.protected}
    assert reasons[v1.b.run_id] == "promoted as glo v1"
    assert "closure of glo v1" in reasons[v1.a.run_id]
    assert "newest" in reasons[third.b.run_id]
    assert "upstream of kept run" in reasons[third.a.run_id]
    by_run = {e.run_id: e for e in plan.entries}
    assert by_run[v1.b.run_id].bytes == 1000
    assert by_run[third.a.run_id].bytes > 500


def test_apply_deletes_in_order_and_leaves_every_promise_intact(
        lake: Lake, history, promoted: PromotionResult) -> None:
    v1, second, third = history["v1"], history["second"], history["third"]
    kept = published(lake)
    done = lake.gc(1, apply=True, now=LATER)
    assert done.applied and actions(done)[second.b.run_id] == "delete-run"
    assert published(lake) == kept  # raw, processed and catalogs untouched
    assert verify_certificate(lake.config, promoted.certificate) == []
    assert lake.check(v1.b.run_id).ok  # the promoted run still passes its gate
    assert lake.check(third.b.run_id).ok  # its upstream lost files, not lineage
    for run in (second.a, second.b):
        assert not run.dir.exists()
    assert {r.run_id for r in lake.runs()} == {v1.a.run_id, v1.b.run_id, third.a.run_id,
                                               third.b.run_id}
    assert not list(v1.b.tmp.iterdir()) and (v1.b.artifacts / "parcels.geojson").is_file()
    assert not list(third.a.artifacts.iterdir()) and not list(third.a.tmp.iterdir())
    assert (third.a.dir / "run_record.json").is_file()
    with lake.index() as index:
        after = index.dump()
    rebuild_index(lake.config)
    with lake.index() as index:
        assert index.dump() == after  # the index agrees with what is left on disk
    assert plan_gc(lake.config, 1, now=LATER).entries == []  # nothing left to do


def test_running_young_and_unreadable_runs_are_never_touched(lake: Lake, history) -> None:
    running = Run.start(lake.config, "glo", "pipelines/glo/live", **CODE)
    write(running.tmp / "work.tmp", "in progress")
    broken = history["second"].a
    (broken.dir / "run_record.json").write_text("{not json")
    young = plan_gc(lake.config, 0)
    assert young.entries == []
    assert {p.reason for p in young.protected} >= {"still running"}
    assert any("younger than 24 hours" in p.reason for p in young.protected)
    plan = plan_gc(lake.config, 0, now=LATER)
    reasons = {p.run_id: p.reason for p in plan.protected}
    assert reasons[running.run_id] == "still running"
    assert "cannot be read" in reasons[broken.run_id]
    assert running.run_id not in actions(plan) and broken.run_id not in actions(plan)
    apply_gc(lake.config, plan)
    assert (running.tmp / "work.tmp").is_file() and (broken.dir / "run_record.json").exists()
    running.finish("failed")


def test_family_filter_and_symlinks_out_of_a_run(lake: Lake, history) -> None:
    other = rerun(lake, 9, "nhgis")
    victim = history["second"].b
    os.rmdir(victim.tmp)
    os.symlink(lake.root / "data/raw/glo", victim.tmp)  # tmp/ leads into raw
    kept = published(lake)
    plan = lake.gc(0, family="glo", apply=True, now=LATER)
    assert {e.family for e in plan.entries} == {"glo"}
    assert other.a.dir.exists() and other.b.dir.exists()
    assert published(lake) == kept and not victim.dir.exists()


def test_cli_dry_run_lists_and_apply_deletes(run_cli, lake: Lake, history) -> None:
    second = history["second"]
    before = snapshot(lake.root)
    result = run_cli("gc", "--keep", "1", "--min-age-hours", "0")
    assert snapshot(lake.root) == before
    assert "would delete-run" in result.stdout and second.b.run_id in result.stdout
    assert "dry run" in result.stderr
    data = json.loads(run_cli("gc", "--keep", "1", "--min-age-hours", "0", "--json").stdout)
    assert data["applied"] is False and {e["action"] for e in data["entries"]} == {
        "delete-tmp", "delete-artifacts", "delete-run"}
    run_cli("gc", "--keep", "1", "--min-age-hours", "0", "--apply")
    assert not second.b.dir.exists()
    assert json.loads(run_cli("gc", "--keep", "1", "--min-age-hours", "0",
                              "--json").stdout)["entries"] == []


def test_cli_bad_usage_and_a_broken_certificate(run_cli, lake: Lake, history,
                                                promoted: PromotionResult) -> None:
    one_error_line(run_cli("gc", "--keep", "-1", expect=2))
    one_error_line(run_cli("gc", expect=2))
    one_error_line(run_cli("gc", "--keep", "1", "--family", "nope", expect=2))
    (lake.root / promoted.certificate).write_text("{}")
    before = snapshot(lake.root)
    line = one_error_line(run_cli("gc", "--keep", "0", "--min-age-hours", "0", "--apply",
                                  expect=1))
    assert promoted.certificate in line
    assert snapshot(lake.root) == before


@pytest.mark.parametrize("point", ["gc-after-tmp", "gc-after-artifacts", "gc-after-index"])
def test_a_killed_gc_leaves_runs_whole_or_collected(lake: Lake, history, point: str,
                                                    promoted: PromotionResult) -> None:
    import signal
    import subprocess
    import sys

    second = history["second"]
    env = {k: v for k, v in os.environ.items() if k != "KFM_PROV_ROOT"}
    killed = subprocess.run([sys.executable, "-m", "kfm_prov.cli", "--root", str(lake.root),
                             "gc", "--keep", "1", "--min-age-hours", "0", "--apply"],
                            env={**env, "KFM_PROV_CRASH_AT": point}, capture_output=True,
                            text=True, check=False, timeout=120)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    # killed inside one run: its receipts are still there (tmp/ or artifacts/ went first)
    touched = [r for r in (second.a, second.b) if r.dir.exists()]
    assert all((r.dir / "run_record.json").is_file() for r in touched)
    done = lake.gc(1, apply=True, min_age_hours=0)  # the next gc finishes the job
    assert not second.a.dir.exists() and not second.b.dir.exists()
    assert not list((lake.config.dir("cache") / "trash").glob("*"))
    assert verify_certificate(lake.config, promoted.certificate) == []
    with lake.index() as index:
        after = index.dump()
    rebuild_index(lake.config)
    with lake.index() as index:
        assert index.dump() == after
    assert done.applied
