"""The gate and promotion end to end: a clean chain promotes, each defect is refused."""

from __future__ import annotations

import json

import prov
import pytest

from kfm_prov.core.validation import validate_data
from kfm_prov.gate import CHECKS
from kfm_prov.lake import Lake
from kfm_prov.prov.constraints import check_constraints, validate_prov_json
from kfm_prov.publish.promote import PromotionResult
from kfm_prov.store.certificate import verify_certificate
from tests.conftest import (
    CODE,
    COMMIT,
    GEOJSON,
    Chain,
    add_raw,
    make_chain,
    one_error_line,
    snapshot,
    write,
)


def test_a_clean_chain_promotes_with_every_record(lake: Lake, chain: Chain,
                                                  promoted: PromotionResult) -> None:
    root = lake.root
    assert promoted.version == "v1"
    assert promoted.files == ["data/processed/glo/v1/parcels.geojson"]
    assert (root / promoted.files[0]).read_bytes() == (root / chain.product).read_bytes()
    checksums = (root / "data/processed/glo/v1/checksums.sha256").read_text()
    assert checksums.endswith("  parcels.geojson\n")
    for rel in (promoted.stac_item, promoted.prov_bundle, promoted.certificate, promoted.dcat,
                "data/stac/catalog.json", "data/stac/glo/collection.json"):
        assert (root / rel).is_file(), rel
    assert verify_certificate(lake.config, promoted.certificate) == []
    bundle = json.loads((root / promoted.prov_bundle).read_text())
    assert validate_prov_json(bundle) == []
    doc = prov.read(root / promoted.prov_bundle, format="json")
    assert check_constraints(doc) == []
    assert doc == prov.model.ProvDocument.deserialize(
        content=(root / promoted.prov_bundle).read_text(), format="json")
    assert not list(lake.config.dir("staging").rglob("*.json"))


# --- every refusal names its reason and leaves the lake as it was --------------------------

def refused(run_cli, lake: Lake, run_id: str, *codes: str) -> dict:
    """Promote through the CLI; assert exit 1, the codes, and only a refusal receipt written."""
    before = snapshot(lake.root)
    result = run_cli("promote", run_id, "--json", expect=1)
    assert one_error_line(result).startswith("kfm-prov: error: promotion refused")
    found = {f["code"] for f in json.loads(result.stdout)["findings"]}
    assert set(codes) <= found, found
    after = snapshot(lake.root)
    added = {k for k in after if k not in before}
    assert all("/refusals" in k for k in added), added
    assert {k: v for k, v in after.items() if k not in added} == before
    receipt = [k for k in added if k.endswith(".json")]
    assert len(receipt) == 1
    data = json.loads((lake.root / receipt[0]).read_text())
    assert validate_data("refusal", data, file="refusal") == []
    assert set(codes) <= {f["code"] for f in data["findings"]}
    return data


def test_check_writes_nothing_and_reports_every_check(run_cli, lake: Lake, chain: Chain) -> None:
    before = snapshot(lake.root)
    report = json.loads(run_cli("check", chain.b.run_id, "--json").stdout)
    assert snapshot(lake.root) == before
    assert report["ok"] is True
    checked = [c for c in CHECKS if c != "signatures"]  # only under require_signed_runs
    assert [c["id"] for c in report["checks"]] == checked
    assert sorted(report["closure"]["runs"]) == sorted([chain.a.run_id, chain.b.run_id])
    text = run_cli("check", chain.b.run_id[:10]).stdout
    assert text.count("PASS") == len(checked)


def test_modified_raw_file_is_refused(run_cli, lake: Lake, chain: Chain) -> None:
    (lake.root / chain.raw).write_text("id,name\n1,Smith\n2,Forged\n")
    data = refused(run_cli, lake, chain.b.run_id, "raw-modified")
    finding = next(f for f in data["findings"] if f["code"] == "raw-modified")
    assert finding["file"] == chain.raw
    assert finding["nodes"][0].startswith("file:sha256:")


def test_orphan_input_is_refused(run_cli, lake: Lake) -> None:
    stray = write(lake.root / "data/work/handmade.csv", "made by hand")
    with lake.capture("glo", "p", **CODE) as run:
        run.use(stray)
        run.output("p.csv", role="product").write_text("p")
    data = refused(run_cli, lake, run.run_id, "orphan-input", "no-raw-ancestry")
    orphan = next(f for f in data["findings"] if f["code"] == "orphan-input")
    assert orphan["file"] == "data/work/handmade.csv"


def test_transient_and_unrecorded_raw_inputs_are_refused(run_cli, lake: Lake) -> None:
    staged = write(lake.root / "data/work/staging/unzipped.csv", "x")
    write(lake.root / "data/raw/glo/never-added.csv", "y")
    with lake.capture("glo", "p", **CODE) as run:
        run.use(staged)
        run.use("data/raw/glo/never-added.csv")
        run.output("p.csv", role="product").write_text("p")
    refused(run_cli, lake, run.run_id, "transient-input", "raw-not-recorded")


def test_failed_upstream_run_is_refused(run_cli, lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/a.csv", "a")
    with pytest.raises(RuntimeError), lake.capture("glo", "a", **CODE) as a:
        a.use(src)
        a.output("half.csv").write_text("half")
        raise RuntimeError("crashed after writing")
    with lake.capture("glo", "b", **CODE) as b:
        b.use(a.artifacts / "half.csv")
        b.output("p.csv", role="product").write_text("p")
    data = refused(run_cli, lake, b.run_id, "upstream-failed")
    finding = next(f for f in data["findings"] if f["code"] == "upstream-failed")
    assert finding["nodes"] == [f"run:{a.run_id}"]


def test_missing_license_is_refused(run_cli, lake: Lake, chain: Chain) -> None:
    manifest = lake.root / "data/raw/glo/manifest.yml"
    manifest.write_text(manifest.read_text().replace("license: CC-BY-4.0",
                                                     "license: NOASSERTION"))
    refused(run_cli, lake, chain.b.run_id, "license-missing")


def test_failed_validation_is_refused(run_cli, lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/a.csv", "a")
    with lake.capture("glo", "p", **CODE) as run:
        run.use(src)
        run.output("p.csv", role="product").write_text("p")
        run.gate("geometry_validity", "fail", {"invalid": 3})
    refused(run_cli, lake, run.run_id, "validation-failed")


def waived_run(lake: Lake):
    src = add_raw(lake, "data/raw/glo/a.csv", "a")
    with lake.capture("glo", "p", **CODE) as run:
        run.use(src)
        run.output("p.csv", role="product").write_text("p")
        run.gate("geometry_validity", "waived", {"invalid": 1})
    return run


def waiver(run, expires: str, gates: list[str] | None = None) -> dict:
    return {"run_id": run.run_id, "approved_by": "Data Steward", "reason": "one known sliver",
            "gates": gates or ["geometry_validity"], "expires_at": expires}


def test_waivers_expired_incomplete_and_valid(run_cli, lake: Lake) -> None:
    run = waived_run(lake)
    refused(run_cli, lake, run.run_id, "waiver-missing")
    write(run.dir / "waiver.json", json.dumps(waiver(run, "2020-01-01T00:00:00Z")))
    refused(run_cli, lake, run.run_id, "waiver-expired")
    write(run.dir / "waiver.json", json.dumps(waiver(run, "2099-01-01T00:00:00Z", ["schema"])))
    refused(run_cli, lake, run.run_id, "waiver-incomplete")
    write(run.dir / "waiver.json", json.dumps(waiver(run, "2099-01-01T00:00:00Z")))
    result = json.loads(run_cli("promote", run.run_id, "--json").stdout)
    cert = json.loads((lake.root / result["certificate"]).read_text())
    assert cert["waiver"]["approved_by"] == "Data Steward"
    assert "kfm:waiver-" in (lake.root / result["prov_bundle"]).read_text()


def sensitive_chain(lake: Lake, *, redact: bool):
    src = add_raw(lake, "data/raw/khri/sites.csv", "site,lon,lat\nA1,-97.1234,38.5678\n",
                  sensitivity="sensitive-location", license="CC0-1.0",
                  attribution="Kansas Historical Society")
    with lake.capture("khri", "pipelines/khri", **CODE) as run:
        run.use(src)
        precise = run.output("precise.csv", role="intermediate")
        precise.write_text((lake.root / src).read_text())
        if redact:
            run.redact(precise, "public.csv", profile={"method": "snap-to-grid",
                                                       "cell_degrees": 0.1})
            (run.artifacts / "public.csv").write_text("site,lon,lat\nA1,-97.1,38.6\n")
        else:
            run.output("public.csv", role="product", sensitivity="public").write_text(
                "site,lon,lat\nA1,-97.1234,38.5678\n")
    return run


def test_sensitive_location_needs_a_redaction_to_go_public(run_cli, lake: Lake) -> None:
    run = sensitive_chain(lake, redact=False)
    data = refused(run_cli, lake, run.run_id, "sensitivity-downgrade")
    finding = next(f for f in data["findings"] if f["code"] == "sensitivity-downgrade")
    assert finding["nodes"][-1].startswith("file:")
    # The same product declared restricted (the precise one) is promotable as restricted.
    result = lake.promote(run.run_id, outputs=["precise.csv"])
    cert = json.loads((lake.root / result.certificate).read_text())
    assert cert["products"][0]["sensitivity"] == "sensitive-location"


def test_a_recorded_redaction_lets_a_public_product_through(run_cli, lake: Lake) -> None:
    run = sensitive_chain(lake, redact=True)
    result = json.loads(run_cli("promote", run.run_id, "--json").stdout)
    cert = json.loads((lake.root / result["certificate"]).read_text())
    assert cert["products"][0]["sensitivity"] == "public"
    bundle = (lake.root / result["prov_bundle"]).read_text()
    assert "kfm:Redaction" in bundle and "snap-to-grid" in bundle
    assert check_constraints(prov.read(lake.root / result["prov_bundle"], format="json")) == []


def test_second_version_revises_the_first(run_cli, lake: Lake, chain: Chain,
                                          promoted: PromotionResult) -> None:
    second = make_chain(lake, product=GEOJSON.replace("-97.6", "-97.7"))
    result = json.loads(run_cli("promote", second.b.run_id, "--json").stdout)
    assert result["version"] == "v2"
    item = json.loads((lake.root / result["stac_item"]).read_text())
    links = {link["rel"]: link["href"] for link in item["links"]}
    assert links["predecessor-version"].endswith("glo-v1.json")
    assert '"$": "prov:Revision"' in (lake.root / result["prov_bundle"]).read_text()
    collection = json.loads((lake.root / "data/stac/glo/collection.json").read_text())
    assert sum(link["rel"] == "item" for link in collection["links"]) == 2
    ttl = (lake.root / "data/catalog/dcat/glo.ttl").read_text()
    assert "/v1/" in ttl and "/v2/" in ttl
    # The same bytes again are already published: a no-op that names the version.
    before = snapshot(lake.root)
    again = run_cli("promote", second.b.run_id)
    assert "already published as glo v2" in again.stdout
    assert snapshot(lake.root) == before
    # Versions are immutable: asking for v1 with other bytes is refused and writes nothing.
    third = make_chain(lake, product=GEOJSON.replace("-97.6", "-97.8"))
    before = snapshot(lake.root)
    line = one_error_line(run_cli("promote", third.b.run_id, "--version", "v1", expect=1))
    assert "v1 exists already" in line
    assert snapshot(lake.root) == before


def test_processed_inputs_count_when_certified(lake: Lake, chain: Chain,
                                               promoted: PromotionResult) -> None:
    with lake.capture("summary", "pipelines/summary", **CODE) as run:
        run.use(promoted.files[0])
        run.output("summary.csv", role="product").write_text("parcels,1\n")
    report = lake.check(run.run_id)
    assert report.ok, [f.one_line() for f in report.findings]
    result = lake.promote(run.run_id)
    item = json.loads((lake.root / result.stac_item).read_text())
    assert any(link["rel"] == "derived_from" and link["href"].endswith("glo-v1.json")
               for link in item["links"])


@pytest.mark.parametrize(("commit", "code"), [("unknown", "missing-git-commit"),
                                              (COMMIT[:12] + "-dirty", "dirty-commit")])
def test_runs_need_a_clean_commit(run_cli, lake: Lake, commit: str, code: str) -> None:
    src = add_raw(lake, "data/raw/glo/a.csv", "a")
    with lake.capture("glo", "p", commit=commit) as run:
        run.use(src)
        run.output("p.csv", role="product").write_text("p")
    refused(run_cli, lake, run.run_id, code)


def test_product_changed_after_its_run_is_refused(run_cli, lake: Lake, chain: Chain) -> None:
    (lake.root / chain.product).write_text('{"type": "FeatureCollection", "features": []}')
    refused(run_cli, lake, chain.b.run_id, "output-digest-mismatch")


def test_receipt_edited_after_recording_is_refused(run_cli, lake: Lake, chain: Chain) -> None:
    manifest = chain.a.dir / "run_manifest.json"
    manifest.write_text(manifest.read_text().replace('"rows": 2', '"rows": 3'))
    log = chain.a.dir / "logs" / "run.log"
    log.write_text(log.read_text() + "token ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8\n")
    refused(run_cli, lake, chain.b.run_id, "receipt-modified", "secret-in-log")


def test_use_before_generation_is_refused(run_cli, lake: Lake) -> None:
    early = write(lake.root / "data/work/early.csv", "same bytes")
    with lake.capture("glo", "consumer", **CODE) as consumer:
        consumer.use(early)
        consumer.output("p.csv", role="product").write_text("p")
    with lake.capture("glo", "late-producer", **CODE) as producer:
        producer.output("same.csv").write_text("same bytes")
    refused(run_cli, lake, consumer.run_id, "use-before-generation")


def test_a_run_without_products_is_bad_input(run_cli, lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/o.csv", "o")
    with lake.capture("glo", "p", **CODE) as run:
        run.use(src)
        run.output("o.csv").write_text("o")
    assert "no product outputs" in one_error_line(run_cli("check", run.run_id, expect=2))
    assert "no output" in one_error_line(run_cli("check", run.run_id, "--output", "x.csv",
                                                 expect=2))
    run_cli("check", run.run_id, "--output", "o.csv")


def test_configured_paths_are_honoured_everywhere(tmp_path) -> None:
    write(tmp_path / "kfm-prov.toml", '[paths]\nprocessed = "published"\nstac = "catalog/stac"\n'
          'prov = "catalog/prov"\ndcat = "catalog/dcat"\n')
    lake = Lake.init(tmp_path)
    chain = make_chain(lake)
    result = lake.promote(chain.b.run_id)
    assert result.files == ["published/glo/v1/parcels.geojson"]
    assert result.stac_item == "catalog/stac/glo/glo-v1/glo-v1.json"
    assert result.certificate == "catalog/prov/glo/v1.certificate.json"
    assert result.dcat == "catalog/dcat/glo.ttl"
    item = json.loads((lake.root / result.stac_item).read_text())
    href = item["assets"]["parcels.geojson"]["href"]
    assert href == "../../../../published/glo/v1/parcels.geojson"
    assert not (lake.root / "data/stac").exists() or not any((lake.root / "data/stac").iterdir())
    assert verify_certificate(lake.config, result.certificate) == []
    assert lake.verify().findings == []
    assert lake.trace(result.stac_item).ok


def test_a_promoted_file_is_a_copy_never_a_link_to_the_work_file(
        lake: Lake, chain: Chain, promoted: PromotionResult) -> None:
    import os

    from kfm_prov.core.jsonio import clone_file

    published, work = lake.root / promoted.files[0], lake.root / chain.product
    assert os.stat(published).st_nlink == 1
    assert not os.path.samefile(published, work)
    before = published.read_bytes()
    os.chmod(work, 0o644)
    with open(work, "r+b") as handle:  # a later write to the work copy, in place
        handle.write(b"X")
    assert published.read_bytes() == before
    target = lake.root / "clone.bin"
    assert clone_file(work, target) in ("reflink", "copy")
    assert target.read_bytes() == work.read_bytes()


def test_promote_hashes_the_product_once_and_its_staged_copy_once(lake: Lake,
                                                                  chain: Chain) -> None:
    """A 1 GiB product costs a hash per read (issue 17): the gate's fresh hash of the work
    file and the verification of the staged copy, and no more (counted by the
    interpreter's profile hook on ``sha256_file``, every thread)."""
    import os
    import sys
    import threading

    from kfm_prov.store import digests

    code = digests.sha256_file.__code__
    seen: list[str] = []

    def watch(frame: object, event: str, arg: object) -> None:
        if event == "call" and frame.f_code is code:  # type: ignore[attr-defined]
            seen.append(os.fspath(frame.f_locals["path"]))  # type: ignore[attr-defined]

    sys.setprofile(watch)
    threading.setprofile(watch)  # type: ignore[arg-type]
    try:
        lake.promote(chain.b.run_id)
    finally:
        sys.setprofile(None)
        threading.setprofile(None)  # type: ignore[arg-type]
    product = [p for p in seen if p.endswith("/parcels.geojson")]
    assert len(product) == 2, product
    assert sum(p.endswith(chain.product) for p in product) == 1  # the work file, once
