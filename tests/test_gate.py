"""The gate as a library: ``kfm_prov.gate.evaluate`` on real lakes, writing nothing.

The CLI tests (tests/cli/test_promote.py) see the gate through ``check`` and ``promote``;
these look at the report itself: the closure it proved, the order of its checks, what
``now`` and ``outputs`` change, and that one failure never hides another.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from kfm_prov.errors import InputError, NotFoundError
from kfm_prov.gate import CHECKS, GateReport, evaluate
from kfm_prov.lake import Lake
from kfm_prov.store.lineage import file_node, run_node
from tests.conftest import CODE, GEOJSON, Chain, add_raw, make_chain, snapshot, write
from tests.multi import Multi, sha


def codes(report: GateReport) -> dict[str, list[str]]:
    """check id → the reason codes it gave (only failed checks)."""
    return {c.id: sorted({f.code for f in c.findings}) for c in report.checks
            if c.status == "fail"}


def test_a_clean_chain_passes_every_check_and_names_its_closure(lake: Lake,
                                                                chain: Chain) -> None:
    before = snapshot(lake.root / "data")
    report = evaluate(lake.config, chain.b.run_id)
    assert snapshot(lake.root / "data") == before  # the gate writes nothing
    assert report.ok and report.findings == []
    assert [c.id for c in report.checks] == [c for c in CHECKS if c != "signatures"]  # every
    # check, in a fixed order (signatures only under policy.require_signed_runs)
    assert [p.path for p in report.products] == [chain.product]
    assert set(report.runs) == {chain.a.run_id, chain.b.run_id}
    kinds = {e.path: e.kind for e in report.entities.values()}
    normalised = f"{chain.a.rel_dir}/artifacts/normalised.csv"
    assert kinds == {chain.raw: "raw", normalised: "work", chain.product: "product"}
    raw = next(e for e in report.entities.values() if e.kind == "raw")
    assert (raw.license, raw.attribution, raw.sensitivity) == ("CC-BY-4.0", "Kansas GLO",
                                                               "public")
    digest = sha(lake.root / normalised)
    assert (file_node(raw.digest), run_node(chain.a.run_id), "used") in report.edges
    assert (run_node(chain.a.run_id), file_node(digest), "generated") in report.edges
    assert (file_node(digest), run_node(chain.b.run_id), "used") in report.edges
    assert report.product_sensitivity == {chain.product: "public"}
    summary = report.to_dict()
    assert summary["ok"] is True and summary["closure"] == {
        "runs": sorted([chain.a.run_id, chain.b.run_id]), "entities": 3}


def test_every_check_runs_even_after_one_failed(lake: Lake, chain: Chain) -> None:
    (lake.root / chain.raw).write_text("id,name\n1,Forged\n")
    (lake.root / chain.product).write_text(GEOJSON.replace("38.4", "38.0"))
    report = evaluate(lake.config, chain.b.run_id)
    assert not report.ok
    assert codes(report) == {"raw-sources": ["raw-modified"],
                             "outputs": ["output-digest-mismatch"]}
    assert [f.file for f in report.findings] == [chain.raw, chain.product]
    assert len(report.checks) == len(CHECKS) - 1  # signatures: only under require_signed_runs


def test_outputs_choose_what_is_checked(lake: Lake, chain: Chain) -> None:
    named = evaluate(lake.config, chain.a.run_id, ["normalised.csv"])  # an intermediate
    assert [p.path for p in named.products] == [f"{chain.a.rel_dir}/artifacts/normalised.csv"]
    assert named.ok
    by_path = evaluate(lake.config, chain.b.run_id, [chain.product, "parcels.geojson"])
    assert [p.path for p in by_path.products] == [chain.product]  # named twice, checked once
    with pytest.raises(InputError, match=r"has no output 'nope\.csv'") as error:
        evaluate(lake.config, chain.b.run_id, ["nope.csv"])
    assert error.value.field == "--output"
    with pytest.raises(InputError, match="no product outputs"):
        evaluate(lake.config, chain.a.run_id)
    with pytest.raises(NotFoundError, match="no run 'NOPE'"):
        evaluate(lake.config, "NOPE")


def _waived_run(lake: Lake, expires_at: str) -> str:
    src = add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n", sensitivity="public")
    with lake.capture("glo", "pipelines/glo/waived", **CODE) as run:
        run.use(src)
        run.output("out.geojson", role="product", sensitivity="public").write_text(GEOJSON)
        run.gate("geometry_validity", "waived", {"note": "two slivers"})
    write(run.dir / "waiver.json", json.dumps({
        "schema_version": "kfm.waiver.v1", "run_id": run.run_id, "approved_by": "Steward",
        "reason": "slivers are known", "gates": ["geometry_validity"],
        "expires_at": expires_at}))
    return run.run_id


def test_now_decides_whether_a_waiver_still_holds(lake: Lake) -> None:
    run_id = _waived_run(lake, "2030-01-01T00:00:00Z")
    before = datetime(2029, 12, 31, 23, 59, tzinfo=UTC)
    held = evaluate(lake.config, run_id, now=before)
    assert held.ok, held.findings
    assert held.waiver is not None and held.waiver["approved_by"] == "Steward"
    assert held.checked_at == "2029-12-31T23:59:00.000000Z"
    expired = evaluate(lake.config, run_id, now=datetime(2030, 1, 1, tzinfo=UTC))
    assert codes(expired) == {"validation": ["waiver-expired"]}
    [finding] = expired.findings
    assert finding.file.endswith("/waiver.json") and finding.pointer == "/expires_at"


def test_a_redaction_is_what_lets_a_public_product_descend_from_restricted_data(
        lake: Lake) -> None:
    src = add_raw(lake, "data/raw/khri/sites.csv", "site,lon\n1,-97.51\n",
                  sensitivity="sensitive-location")
    with lake.capture("khri", "pipelines/khri", **CODE) as leaky:
        leaky.use(src)
        leaky.output("sites.geojson", role="product", sensitivity="public").write_text(GEOJSON)
    refused = evaluate(lake.config, leaky.run_id)
    assert codes(refused) == {"sensitivity": ["sensitivity-downgrade"]}
    [finding] = refused.findings
    product = sha(leaky.artifacts / "sites.geojson")
    assert finding.nodes is not None
    assert finding.nodes[0] == file_node(sha(lake.root / src))  # from the raw source
    assert finding.nodes[-1] == file_node(product)  # to the product, the path that fails
    with lake.capture("khri", "pipelines/khri", **CODE) as redacted:
        redacted.use(src)
        redacted.redact(src, "sites.geojson", profile={"method": "snap-to-grid",
                                                       "cell_m": 5000}).write_text(GEOJSON)
    report = evaluate(lake.config, redacted.run_id)
    assert report.ok, report.findings
    assert report.product_sensitivity == {
        f"{redacted.rel_dir}/artifacts/sites.geojson": "public"}


def test_an_unlabelled_product_inherits_the_most_sensitive_label(lake: Lake) -> None:
    src = add_raw(lake, "data/raw/khri/sites.csv", "site\n1\n", sensitivity="restricted")
    with lake.capture("khri", "pipelines/khri", **CODE) as run:
        run.use(src)
        run.output("count.csv", role="product").write_text("n\n1\n")
    report = evaluate(lake.config, run.run_id)
    assert report.ok
    assert report.product_sensitivity == {f"{run.rel_dir}/artifacts/count.csv": "restricted"}


@pytest.mark.multi_lake
def test_a_certified_processed_input_ends_the_walk_and_a_rerun_resolves_by_path(
        lake: Lake, multi: Multi) -> None:
    """joined used glo's promoted product (certified: the walk stops there) and a work file
    that fam2 made twice with the same bytes (the run whose output path it read is taken)."""
    report = evaluate(lake.config, multi.joined)
    assert report.ok, report.findings
    assert set(report.runs) == {multi.joined, multi.fam2b_a}
    kinds = {e.path: e.kind for e in report.entities.values()}
    assert kinds[multi.glo_product] == "processed"
    assert kinds[multi.fam2_raw] == "raw"
    assert multi.glo_raw not in kinds  # glo's own lineage is vouched for by its certificate
    normalised = multi.glo_norm.replace(multi.glo_a, multi.fam2b_a).replace("/glo/", "/fam2/")
    assert (run_node(multi.fam2b_a), file_node(sha(lake.root / normalised)),
            "generated") in report.edges
    assert run_node(multi.fam2_a) not in {a for a, _, _ in report.edges}  # same bytes, other path


@pytest.mark.multi_lake
def test_a_deleted_certificate_makes_the_processed_input_uncertified(
        lake: Lake, multi: Multi) -> None:
    (lake.root / "data/prov/glo/v1.certificate.json").unlink()
    report = evaluate(lake.config, multi.joined)
    # without the certificate its label is unknown too, and unknown counts as restricted
    assert codes(report) == {"raw-sources": ["processed-uncertified"],
                             "sensitivity": ["sensitivity-downgrade"]}
    finding = report.findings[0]
    assert finding.file == "data/prov/glo/v1.certificate.json"
    assert finding.nodes == (file_node(multi.glo_digest), run_node(multi.joined))


def test_a_product_edited_after_its_run_names_the_file_and_a_rerun(lake: Lake) -> None:
    chain = make_chain(lake)
    path: Path = lake.root / chain.product
    path.write_text(path.read_text() + " ")
    report = evaluate(lake.config, chain.b.run_id)
    [finding] = report.findings
    assert (finding.code, finding.file) == ("output-digest-mismatch", chain.product)
    assert finding.hint is not None and "rerun" in finding.hint
