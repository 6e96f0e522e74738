"""Steward commands through the real CLI: waive, versions, runs filters, short prefixes."""

from __future__ import annotations

import json

from kfm_prov.lake import Lake
from kfm_prov.publish.promote import PromotionResult
from tests.conftest import CODE, COMMIT, GEOJSON, Chain, CliInvoker, add_raw, one_error_line


def _waivable(lake: Lake) -> str:
    src = add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n", sensitivity="public")
    with lake.capture("glo", "pipelines/glo/parcels", **CODE) as run:
        run.use(src)
        run.output("parcels.geojson", role="product", sensitivity="public").write_text(GEOJSON)
        run.gate("topology", "waived", {"slivers": 3})
    return run.run_id


def _codes(run_cli: CliInvoker, run_id: str, expect: int) -> set[str]:
    report = json.loads(run_cli("check", run_id, "--json", expect=expect).stdout)
    return {f["code"] for c in report["checks"] for f in c.get("findings", [])}


def test_waive_writes_a_valid_waiver_that_the_gate_accepts(lake: Lake,
                                                           run_cli: CliInvoker) -> None:
    run_id = _waivable(lake)
    assert "waiver-missing" in _codes(run_cli, run_id, 1)
    result = run_cli("waive", run_id[:8], "--gate", "topology", "--reason", "known slivers",
                     "--by", "J. Steward", "--until", "2099-12-31", "--json")
    data = json.loads(result.stdout)
    assert data["waiver"]["gates"] == ["topology"]
    assert data["waiver"]["expires_at"].startswith("2099-12-31T23:59:59")
    run_cli("validate", data["path"])
    assert _codes(run_cli, run_id, 0) == set()
    # a second approval replaces the first only when asked, and keeps the first
    again = ("waive", run_id, "--gate", "topology", "--reason", "re-checked", "--by", "K.",
             "--until", "2099-06-30")
    assert "has a waiver already" in one_error_line(run_cli(*again, expect=1))
    replaced = json.loads(run_cli(*again, "--replace", "--json").stdout)["replaced"]
    assert json.loads((lake.root / replaced).read_text())["reason"] == "known slivers"


def test_waive_refuses_what_it_cannot_write_and_writes_nothing(lake: Lake,
                                                               run_cli: CliInvoker) -> None:
    run_id = _waivable(lake)
    base = ("waive", run_id, "--reason", "r", "--by", "b")
    line = one_error_line(run_cli(*base, "--gate", "nope", "--until", "2099-01-01",
                                  expect=2))
    assert "'nope'" in line and "topology" in line
    line = one_error_line(run_cli(*base, "--gate", "topology", "--until", "2001-01-01",
                                  expect=2))
    assert "not in the future" in line
    line = one_error_line(run_cli(*base, "--gate", "topology", "--until", "soon", expect=2))
    assert "--until" in line
    run_dir = lake.resolve_run(run_id).run_dir
    assert not (lake.root / run_dir / "waiver.json").exists()


def test_versions_lists_what_was_promoted(lake: Lake, chain: Chain, promoted: PromotionResult,
                                          run_cli: CliInvoker) -> None:
    [version] = json.loads(run_cli("versions", "glo", "--json").stdout)
    assert (version["family"], version["version"], version["run_id"]) == (
        "glo", "v1", chain.b.run_id)
    assert version["products"][0]["path"] == promoted.files[0]
    assert version["attestation"] is None and version["problem"] is None
    assert "glo v1" in run_cli("versions").stdout
    assert "no promoted version" in one_error_line(run_cli("versions", "nope", expect=2))


def test_runs_filters_give_a_script_the_run_id_it_needs(lake: Lake, chain: Chain,
                                                        run_cli: CliInvoker) -> None:
    out = run_cli("runs", "--family", "glo", "--status", "success", "--last", "--format", "id")
    assert out.stdout.strip() == chain.b.run_id
    out = run_cli("runs", "--pipeline", "pipelines/glo/normalise", "--format", "id")
    assert out.stdout.split() == [chain.a.run_id]
    assert run_cli("runs", "--status", "failed", "--format", "id", expect=1).stdout == ""
    rows = json.loads(run_cli("runs", "--format", "json").stdout)
    assert [r["run_id"] for r in rows] == [chain.a.run_id, chain.b.run_id]
    with lake.capture("glo", "pipelines/glo/dirty", **{**CODE, "commit": COMMIT + "-dirty"}) as run:
        run.output("x.csv").write_text("x\n")
    assert f"{COMMIT[:12]}-dirty" in run_cli("runs").stdout


def test_show_says_when_a_prefix_is_too_short(lake: Lake, chain: Chain,
                                              run_cli: CliInvoker) -> None:
    assert "too short" in one_error_line(run_cli("show", chain.a.run_id[:3], expect=2))
    assert chain.a.run_id in run_cli("show", chain.a.run_id[:20]).stdout
