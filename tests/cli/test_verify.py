"""``kfm-prov verify``: the lake-wide audit catches each kind of tampering, naming the file."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from kfm_prov.lake import Lake
from kfm_prov.verify import CODES, verify_lake
from tests.conftest import one_error_line, snapshot, write
from tests.multi import Multi

pytestmark = pytest.mark.multi_lake


def findings(run_cli) -> list[tuple[str, str]]:
    """(code, file) of every finding, through the CLI; asserts exit 1 and one error line."""
    result = run_cli("verify", "--json", expect=1)
    assert "verify found" in one_error_line(result)
    data = json.loads(result.stdout)
    assert data["ok"] is False
    assert {f["code"] for f in data["findings"]} <= set(CODES)
    return [(f["code"], f.get("file")) for f in data["findings"]]


def tamper(path: Path, text: str) -> None:
    os.chmod(path, 0o644)
    path.write_text(text)


def test_a_clean_lake_verifies_and_nothing_is_written(run_cli, lake: Lake) -> None:
    before = snapshot(lake.root)
    result = run_cli("verify")
    assert result.stdout.startswith("lake verified: 2 raw files, 4 versions")
    data = json.loads(run_cli("verify", "--json").stdout)
    assert data == {"ok": True, "findings": [], "notes": [], "checked": data["checked"]}
    assert data["checked"]["certificates"] == 4
    assert snapshot(lake.root) == before
    assert verify_lake(lake.config) == []


def test_a_changed_raw_file(run_cli, lake: Lake, multi: Multi) -> None:
    tamper(lake.root / multi.glo_raw, "id,name\n1,Smith\n2,Jonas\n")
    found = findings(run_cli)
    assert ("raw-modified", multi.glo_raw) in found
    # glo's certificate no longer holds; joined's stops at glo's certified product
    assert found == [("certificate-broken", "data/prov/glo/v1.certificate.json"),
                     ("raw-modified", multi.glo_raw)]
    os.remove(lake.root / multi.fam2_raw)
    assert ("raw-missing", multi.fam2_raw) in findings(run_cli)


def test_a_changed_processed_file(run_cli, lake: Lake, multi: Multi) -> None:
    tamper(lake.root / multi.fam2_v1, '{"type": "FeatureCollection", "features": []}')
    found = findings(run_cli)
    assert ("processed-modified", multi.fam2_v1) in found
    assert ("certificate-broken", "data/prov/fam2/v1.certificate.json") in found
    assert ("stac-checksum-mismatch", "data/stac/fam2/fam2-v1/fam2-v1.json") in found
    text = run_cli("verify", expect=1).stdout
    assert f"[processed-modified] {multi.fam2_v1} changed" in text


def test_an_edited_certificate(run_cli, lake: Lake) -> None:
    cert = lake.root / "data/prov/fam2/v2.certificate.json"
    data = json.loads(cert.read_text())
    data["closure"]["entities"][0]["digest"] = "sha256:" + "0" * 64
    tamper(cert, json.dumps(data, indent=2))
    result = run_cli("verify", expect=1)
    assert ("certificate-broken", "data/prov/fam2/v2.certificate.json") in findings(run_cli)
    assert "certificate-edited" in result.stdout


def test_a_deleted_stac_item(run_cli, lake: Lake) -> None:
    item = "data/stac/glo/glo-v1/glo-v1.json"
    os.remove(lake.root / item)
    found = findings(run_cli)
    assert ("missing-stac-item", item) in found
    assert ("stac-dangling-link", "data/stac/glo/collection.json") in found


def test_a_stray_file_in_processed(run_cli, lake: Lake, multi: Multi) -> None:
    stray = "data/processed/fam2/v2/extra.csv"
    write(lake.root / stray, "sneaked in\n")
    assert findings(run_cli) == [("processed-unlisted", stray)]
    write(lake.root / "data/processed/fam2/v9/made-by-hand.csv", "x\n")
    found = findings(run_cli)
    assert ("unpromoted-processed", "data/processed/fam2/v9") in found
    assert ("processed-checksums-missing", "data/processed/fam2/v9/checksums.sha256") in found


def test_missing_bundle_dcat_and_certificate(run_cli, lake: Lake) -> None:
    os.remove(lake.root / "data/prov/fam2/v1.json")
    os.remove(lake.root / "data/catalog/dcat/joined.ttl")
    os.remove(lake.root / "data/prov/glo/v1.certificate.json")
    found = findings(run_cli)
    assert ("missing-bundle", "data/prov/fam2/v1.json") in found
    assert ("missing-dcat-distribution", "data/catalog/dcat/joined.ttl") in found
    assert ("missing-certificate", "data/prov/glo/v1.certificate.json") in found
    assert ("stac-dangling-link", "data/stac/fam2/fam2-v1/fam2-v1.json") in found  # its bundle


def test_a_dcat_file_without_one_version(run_cli, lake: Lake) -> None:
    ttl = lake.root / "data/catalog/dcat/fam2.ttl"
    kept = [block for block in ttl.read_text().split("\n\n") if "/fam2/v2/" not in block]
    tamper(ttl, "\n\n".join(kept))
    found = findings(run_cli)
    assert ("missing-dcat-distribution", "data/catalog/dcat/fam2.ttl") in found
    text = run_cli("verify", expect=1).stdout
    assert "fam2 v2 parcels.geojson has no DCAT distribution" in text


def test_a_missing_processed_file_is_a_dangling_asset(run_cli, lake: Lake, multi: Multi) -> None:
    os.remove(lake.root / multi.joined_product)
    found = findings(run_cli)
    assert ("processed-missing", multi.joined_product) in found
    assert ("stac-dangling-asset", "data/stac/joined/joined-v1/joined-v1.json") in found


def test_lake_verify_is_the_python_api(lake: Lake, multi: Multi) -> None:
    report = lake.verify()
    assert report.ok and report.checked["raw_files"] == 2
    tamper(lake.root / multi.glo_product, "changed")
    assert {f.code for f in lake.verify().findings} >= {"processed-modified",
                                                        "certificate-broken"}
