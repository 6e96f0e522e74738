"""A family publishing several products: each version is a snapshot of the family.

Promoting one product carries the latest version's other products forward (same bytes,
re-verified, lineage still their first run's); ``--drop`` leaves one out, on the record.
And ``check`` refuses whatever ``promote`` would, with the same reason code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kfm_prov.capture import Run
from kfm_prov.lake import Lake
from tests.cli.test_promote import refused
from tests.cli.test_run import seed_run
from tests.conftest import CODE, GEOJSON, Chain, one_error_line, snapshot

ROADS = GEOJSON.replace("-97.6", "-97.5")
V1_PARCELS = "data/processed/glo/v1/parcels.geojson"


def second_product(lake: Lake, chain: Chain, name: str = "roads.geojson",
                   content: str = ROADS) -> Run:
    """Another run of the family, making another product from the same normalised file."""
    with lake.capture("glo", f"pipelines/glo/{name.split('.')[0]}", **CODE) as run:
        run.use(chain.a.artifacts / "normalised.csv")
        run.output(name, role="product", sensitivity="public").write_text(content)
        run.gate("geometry_validity", "pass")
    return run


def promote_json(run_cli, *args: str) -> dict:
    return json.loads(run_cli("promote", *args, "--json").stdout)


def read(lake: Lake, rel: str) -> dict:
    return json.loads((lake.root / rel).read_text())


def test_a_second_product_carries_the_first_forward(run_cli, lake: Lake, chain: Chain) -> None:
    first = promote_json(run_cli, chain.b.run_id)
    roads = second_product(lake, chain)
    result = promote_json(run_cli, roads.run_id)
    assert result["version"] == "v2"
    carried = "data/processed/glo/v2/parcels.geojson"
    assert result["files"] == [carried, "data/processed/glo/v2/roads.geojson"]
    assert result["carried"] == [carried]
    assert (lake.root / carried).read_bytes() == (lake.root / V1_PARCELS).read_bytes()
    sums = (lake.root / "data/processed/glo/v2/checksums.sha256").read_text()
    assert "  parcels.geojson\n" in sums and "  roads.geojson\n" in sums
    # the certificate says where the carried bytes come from: v1, run of chain.b
    cert = read(lake, result["certificate"])
    by_path = {p["path"]: p for p in cert["products"]}
    assert by_path[carried]["carried_from"] == {
        "version": "v1", "run_id": chain.b.run_id, "path": V1_PARCELS,
        "certificate": first["certificate"]}
    assert by_path[carried]["source_path"] == chain.product
    assert "carried_from" not in by_path["data/processed/glo/v2/roads.geojson"]
    assert cert["run_id"] == roads.run_id
    # STAC asset, DCAT distribution and PROV bundle say so too
    item = read(lake, result["stac_item"])
    assert item["assets"]["parcels.geojson"]["kfm:carried_from"] == {
        "version": "v1", "run_id": chain.b.run_id}
    assert "kfm:carried_from" not in item["assets"]["roads.geojson"]
    assert "Carried forward unchanged from v1" in item["properties"]["processing:lineage"]
    ttl = (lake.root / result["dcat"]).read_text()
    assert f"carried forward unchanged from glo v1 (first promoted from run {chain.b.run_id}" \
        in ttl
    bundle = (lake.root / result["prov_bundle"]).read_text()
    assert '"kfm:carried"' in bundle
    # the lake verifies, and the carried file's lineage is its own run's, not the new run's
    run_cli("verify")
    trace = json.loads(run_cli("trace", carried, "--json").stdout)
    runs = {n["id"] for n in trace["nodes"] if n["id"].startswith("run:")}
    assert f"run:{chain.b.run_id}" in runs and f"run:{chain.a.run_id}" in runs
    assert f"run:{roads.run_id}" not in runs
    assert trace["issues"] == []
    versions = run_cli("versions", "glo").stdout
    assert f"v2/parcels.geojson  (carried from v1, run {chain.b.run_id})" in versions
    run_cli("site", str(lake.root.parent / "site"))
    page = (lake.root.parent / "site/families/glo/v2/index.html").read_text()
    assert "carried forward unchanged from v1" in page


def test_carried_twice_still_names_the_first_promotion(run_cli, lake: Lake,
                                                         chain: Chain) -> None:
    promote_json(run_cli, chain.b.run_id)
    roads = second_product(lake, chain)
    promote_json(run_cli, roads.run_id)
    rivers = second_product(lake, chain, "rivers.geojson", GEOJSON.replace("-97.6", "-97.3"))
    result = promote_json(run_cli, rivers.run_id)
    assert result["version"] == "v3"
    cert = read(lake, result["certificate"])
    origins = {p["path"].rsplit("/", 1)[1]: p.get("carried_from", {}).get("version")
               for p in cert["products"]}
    assert origins == {"parcels.geojson": "v1", "roads.geojson": "v2", "rivers.geojson": None}
    run_cli("verify")
    trace = json.loads(run_cli("trace", "data/processed/glo/v3/parcels.geojson",
                               "--json").stdout)
    assert f"run:{chain.b.run_id}" in {n["id"] for n in trace["nodes"]}


def test_the_same_snapshot_again_is_already_published(run_cli, lake: Lake,
                                                       chain: Chain) -> None:
    promote_json(run_cli, chain.b.run_id)
    roads = second_product(lake, chain)
    promote_json(run_cli, roads.run_id)
    before = snapshot(lake.root)
    # either run again: its product is v2's, the other would be carried unchanged
    assert "already published as glo v2" in run_cli("promote", roads.run_id).stdout
    assert "already published as glo v2" in run_cli("promote", chain.b.run_id).stdout
    assert snapshot(lake.root) == before


def test_drop_leaves_a_product_out_on_the_record(run_cli, lake: Lake, chain: Chain) -> None:
    promote_json(run_cli, chain.b.run_id)
    roads = second_product(lake, chain)
    before = snapshot(lake.root)
    line = one_error_line(run_cli("promote", roads.run_id, "--drop", "nope.geojson",
                                  expect=2))
    assert "glo v1 has no product 'nope.geojson' to drop" in line and "--drop" in line
    line = one_error_line(run_cli("promote", roads.run_id, "--drop", "roads.geojson",
                                  expect=2))
    assert "cannot also be dropped" in line
    assert snapshot(lake.root) == before
    report = json.loads(run_cli("check", roads.run_id, "--drop", "parcels.geojson",
                                "--json").stdout)
    assert report["snapshot"] == {"of": "v1", "dropped": ["parcels.geojson"], "carried": []}
    out = run_cli("promote", roads.run_id, "--drop", "parcels.geojson").stdout
    assert "dropped      parcels.geojson" in out
    assert sorted(os.listdir(lake.root / "data/processed/glo/v2")) == [
        "checksums.sha256", "roads.geojson"]
    cert = read(lake, "data/prov/glo/v2.certificate.json")
    assert cert["dropped"] == ["parcels.geojson"]
    assert read(lake, "data/stac/glo/glo-v2/glo-v2.json")["properties"]["kfm:dropped"] == [
        "parcels.geojson"]
    run_cli("verify")


def test_a_tampered_carried_product_refuses_the_promotion(run_cli, lake: Lake,
                                                           chain: Chain) -> None:
    promote_json(run_cli, chain.b.run_id)
    published = lake.root / V1_PARCELS
    os.chmod(published, 0o644)
    published.write_text(GEOJSON.replace("-97.6", "-97.9"))
    roads = second_product(lake, chain)
    report = json.loads(run_cli("check", roads.run_id, "--json", expect=1).stdout)
    codes = {f["code"] for c in report["checks"] for f in c.get("findings", [])}
    assert codes == {"carried-modified"}
    data = refused(run_cli, lake, roads.run_id, "carried-modified")
    finding = next(f for f in data["findings"] if f["code"] == "carried-modified")
    assert finding["file"] == V1_PARCELS
    assert "--drop parcels.geojson" in finding["hint"]
    assert not (lake.root / "data/processed/glo/v2").exists()
    # leaving it out is the user's explicit way forward
    result = promote_json(run_cli, roads.run_id, "--drop", "parcels.geojson")
    assert result["version"] == "v2" and result["carried"] == []


def test_a_broken_certificate_of_the_latest_version_refuses(run_cli, lake: Lake,
                                                             chain: Chain) -> None:
    promote_json(run_cli, chain.b.run_id)
    raw = lake.root / chain.raw
    os.chmod(raw, 0o644)
    raw.write_text("id,name\n1,Smith\n2,Brown\n")  # v1's proof no longer holds
    roads = second_product(lake, chain)
    refused(run_cli, lake, roads.run_id, "carried-uncertified")


# --- check is the whole gate ---------------------------------------------------------------

def bad_geojson_run(lake: Lake, chain: Chain, content: str) -> Run:
    with lake.capture("glo", "pipelines/glo/parcels", **CODE) as run:
        run.use(chain.a.artifacts / "normalised.csv")
        run.output("parcels.geojson", role="product", sensitivity="public").write_text(content)
        run.gate("geometry_validity", "pass")
    return run


def test_malformed_geojson_is_refused_by_check_as_by_promote(run_cli, lake: Lake,
                                                               chain: Chain) -> None:
    for content, words in (("{not json", "GeoJSON"),
                           (GEOJSON.replace("-97.6", "-197.6"), "outside WGS 84")):
        run = bad_geojson_run(lake, chain, content)
        product = f"{run.rel_dir}/artifacts/parcels.geojson"
        before = snapshot(lake.root)
        result = run_cli("check", run.run_id, "--json", expect=1)
        assert snapshot(lake.root) == before  # check writes nothing
        findings = [f for c in json.loads(result.stdout)["checks"]
                    for f in c.get("findings", [])]
        assert [f["code"] for f in findings] == ["product-malformed"]
        assert findings[0]["file"] == product and words in findings[0]["message"]
        text = run_cli("check", run.run_id, expect=1).stdout
        assert "[product-malformed]" in text and product in text
        data = refused(run_cli, lake, run.run_id, "product-malformed")
        assert {f["code"] for f in data["findings"]} == {"product-malformed"}
        assert data["findings"][0]["file"] == product
        assert not Path(lake.root / "data/processed/glo").exists()


def test_a_media_type_publishing_cannot_describe_is_refused_by_check(run_cli,
                                                                      lake: Lake) -> None:
    """Receipts a pipeline wrote may declare any media type; the STAC and DCAT writers
    accept only type/subtype, so the gate refuses the rest with a code of its own."""
    run_dir = seed_run(lake)
    manifest_path = run_dir / "run_manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["outputs"][0]["media_type"] = "table"
    manifest_path.write_text(json.dumps(manifest, indent=2))
    run_cli("record", run_dir.relative_to(lake.root).as_posix())
    run_id = manifest["run_id"]
    report = json.loads(run_cli("check", run_id, "--json", expect=1).stdout)
    found = [f for c in report["checks"] for f in c.get("findings", [])
             if f["code"] == "product-malformed"]
    assert len(found) == 1 and "'table', not type/subtype" in found[0]["message"]
    refused(run_cli, lake, run_id, "product-malformed")


def reseal(lake: Lake, rel: str, edit) -> None:
    """Edit a certificate and recompute its Merkle root, as an attacker with write access
    would: only what verify re-checks against the files can catch it."""
    from kfm_prov.store.certificate import certificate_leaves, merkle_root

    path = lake.root / rel
    os.chmod(path, 0o644)
    data = json.loads(path.read_text())
    edit(data)
    leaves = certificate_leaves({k: v for k, v in data.items() if k != "merkle"})
    data["merkle"] = {"algorithm": "sha256-rfc6962", "leaves": len(leaves),
                      "root": merkle_root(leaves)}
    path.write_text(json.dumps(data, indent=2, sort_keys=True))


def test_verify_sees_a_forged_or_looping_carried_from(run_cli, lake: Lake,
                                                      chain: Chain) -> None:
    promote_json(run_cli, chain.b.run_id)
    roads = second_product(lake, chain)
    promote_json(run_cli, roads.run_id)
    v1, v2 = "data/prov/glo/v1.certificate.json", "data/prov/glo/v2.certificate.json"

    def claim_roads_run(data: dict) -> None:  # the carried file's lineage moved to roads
        for product in data["products"]:
            if "carried_from" in product:
                product["carried_from"]["run_id"] = roads.run_id

    reseal(lake, v2, claim_roads_run)
    out = run_cli("verify", expect=1).stdout
    assert "[carried-origin-broken]" in out and "v2.certificate.json" in out

    def loop_back(data: dict) -> None:  # v1 says its product came from v2, v2 from v1
        data["products"][0]["carried_from"] = {
            "version": "v2", "run_id": roads.run_id, "certificate": v2,
            "path": "data/processed/glo/v2/parcels.geojson"}

    reseal(lake, v1, loop_back)
    out = run_cli("verify", expect=1).stdout  # ends, and says so for both
    assert "the certificate of glo v1 no longer holds" in out
    assert "the certificate of glo v2 no longer holds" in out


def test_a_signed_snapshot_names_the_carried_product_and_where_it_came_from(
        run_cli, lake: Lake, chain: Chain, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> None:
    made = json.loads(run_cli("keys", "generate", "--out", str(tmp_path / "keys"),
                              "--json").stdout)
    monkeypatch.setenv("KFM_PROV_SIGNING_KEY", made["private_key"])
    toml = lake.root / "kfm-prov.toml"
    toml.write_text(toml.read_text() + f'\n[trust]\nkeys = ["{made["public_key"]}"]\n')
    promote_json(run_cli, chain.b.run_id)
    result = promote_json(run_cli, second_product(lake, chain).run_id)
    run_cli("verify", "--require-signatures")
    out = run_cli("verify-artifact", "data/processed/glo/v2/parcels.geojson",
                  "--attestation", result["attestation"], "--key",
                  made["public_key"]).stdout
    assert "is data/processed/glo/v2/parcels.geojson of glo v2" in out
    assert (f"carried {V1_PARCELS} (first published in v1 from run {chain.b.run_id})"
            in out)


def test_verify_checks_an_origin_once_however_many_versions_carry_from_it(
        run_cli, lake: Lake, chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    """v2 and v3 both carry parcels from v1 (v3 roads from v2): verify re-verifies each
    origin once (before: v1 once per carrying version), and still fails on an edit."""
    from kfm_prov.store import certificate

    promote_json(run_cli, chain.b.run_id)
    promote_json(run_cli, second_product(lake, chain).run_id)
    promote_json(run_cli, second_product(lake, chain, "rails.geojson",
                                         ROADS.replace("-97.5", "-97.4")).run_id)
    as_origin: list[str] = []
    verify = certificate.verify_certificate

    def counting(config, rel, *args, **kwargs):  # type: ignore[no-untyped-def]
        if kwargs.get("follow_carried") is False:
            as_origin.append(rel)
        return verify(config, rel, *args, **kwargs)

    monkeypatch.setattr(certificate, "verify_certificate", counting)
    run_cli("verify")
    assert sorted(as_origin) == ["data/prov/glo/v1.certificate.json",
                                 "data/prov/glo/v2.certificate.json"]
    monkeypatch.setattr(certificate, "verify_certificate", verify)
    os.chmod(lake.root / V1_PARCELS, 0o644)
    (lake.root / V1_PARCELS).write_text(ROADS)
    found = json.loads(run_cli("verify", "--json", expect=1).stdout)["findings"]
    assert any(f["code"] == "certificate-broken" and "v3" in f["message"]
               and "carried-origin-broken" in f["message"] for f in found)


def test_check_hashes_each_raw_source_once_when_it_carries(
        run_cli, lake: Lake, chain: Chain, monkeypatch: pytest.MonkeyPatch) -> None:
    """Carrying re-verifies the latest version's certificate; the raw source both closures
    share is hashed once per check, not again for the certificate (a 1 GiB raw file
    made every check of such a family hash it twice)."""
    from kfm_prov import gate
    from kfm_prov.store import certificate

    promote_json(run_cli, chain.b.run_id)
    roads = second_product(lake, chain)
    hashed: list[str] = []

    def spy(module):  # type: ignore[no-untyped-def]
        real = module.hash_files

        def counting(paths, *args, **kwargs):  # type: ignore[no-untyped-def]
            hashed.extend(str(p) for p in paths)
            return real(paths, *args, **kwargs)
        monkeypatch.setattr(module, "hash_files", counting)

    spy(gate)
    spy(certificate)
    report = json.loads(run_cli("check", roads.run_id, "--json").stdout)
    assert report["snapshot"]["carried"], "the check carries parcels from v1"
    assert sum(p.endswith(chain.raw) for p in hashed) == 1
    assert sum(p.endswith(V1_PARCELS) for p in hashed) == 1  # the carried file, checked
