"""The reconstructibility certificate: RFC 6962 hashing, build/verify, and each tampering."""

from __future__ import annotations

import json
import shutil
from typing import Any

import pytest

from kfm_prov.core.validation import validate_data
from kfm_prov.gate import evaluate
from kfm_prov.lake import Lake
from kfm_prov.publish.promote import PromotionResult
from kfm_prov.store.certificate import (
    MERKLE_ALGORITHM,
    build_certificate,
    certificate_leaves,
    merkle_root,
    verify_certificate,
)
from tests.conftest import Chain

# The Certificate Transparency reference tree (RFC 6962 §2.1): the leaves are the byte
# strings 00, 10, 2021, ... (all ASCII here), the roots those of the first n leaves.
CT_LEAVES = ["", "\x00", "\x10", " !", "01", "@ABC", "PQRSTUVW", "`abcdefghijklmno"]
CT_ROOTS = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
]


@pytest.mark.parametrize("size", range(len(CT_ROOTS)))
def test_merkle_root_matches_the_rfc_6962_reference_tree(size: int) -> None:
    assert merkle_root(CT_LEAVES[:size]) == f"sha256:{CT_ROOTS[size]}"


def test_merkle_root_depends_on_every_leaf_and_their_order() -> None:
    leaves = [f"leaf {i}" for i in range(13)]  # not a power of two: the ragged split
    root = merkle_root(leaves)
    assert merkle_root(list(reversed(leaves))) != root
    assert merkle_root(leaves[:-1]) != root
    assert merkle_root([*leaves[:6], "leaf 6 ", *leaves[7:]]) != root
    # a leaf is hashed apart from a node (0x00 vs 0x01): two leaves are not one leaf
    assert merkle_root(["ab"]) != merkle_root(["a", "b"])


# --- build and verify ------------------------------------------------------------------------

def _read(lake: Lake, rel: str) -> dict[str, Any]:
    return json.loads((lake.root / rel).read_text(encoding="utf-8"))


def _write(lake: Lake, rel: str, cert: dict[str, Any], *, reseal: bool) -> None:
    """Write an edited certificate; with ``reseal``, as an attacker who recomputes the root."""
    if reseal:
        leaves = certificate_leaves({k: v for k, v in cert.items() if k != "merkle"})
        cert["merkle"] = {**cert["merkle"], "leaves": len(leaves), "root": merkle_root(leaves)}
    (lake.root / rel).write_text(json.dumps(cert), encoding="utf-8")


def codes_of(lake: Lake, rel: str) -> list[str]:
    return sorted(f.code for f in verify_certificate(lake.config, rel))


def test_build_is_deterministic_valid_and_verifies(lake: Lake, chain: Chain) -> None:
    report = evaluate(lake.config, chain.b.run_id)
    products = [{"path": "data/processed/glo/v9/parcels.geojson",
                 "source_path": chain.product, "digest": report.products[0].digest,
                 "sensitivity": "public"}]
    args = {"version": "v9", "products": products, "promotion_id": "promotion-glo-v9",
            "issued_at": "2026-01-01T00:00:00.000000Z"}
    cert = build_certificate(report, **args).to_dict()
    assert cert == build_certificate(report, **args).to_dict()  # same proof, same bytes
    assert validate_data("certificate", cert, file="v9.certificate.json") == []
    leaves = certificate_leaves({k: v for k, v in cert.items() if k != "merkle"})
    assert cert["merkle"] == {"algorithm": MERKLE_ALGORITHM, "leaves": len(leaves),
                              "root": merkle_root(leaves)}
    assert len(leaves) == 2 + 2 + 3 + len(cert["closure"]["edges"]) + 1 + len(cert["checks"])
    assert {r["run_id"] for r in cert["closure"]["runs"]} == {chain.a.run_id, chain.b.run_id}
    assert all(c["status"] == "pass" for c in cert["checks"])


def test_the_order_of_the_closure_does_not_change_the_root(lake: Lake, chain: Chain) -> None:
    report = evaluate(lake.config, chain.b.run_id)
    cert = build_certificate(report, version="v1", products=[], promotion_id="p",
                             issued_at="2026-01-01T00:00:00.000000Z").to_dict()
    body = {k: v for k, v in cert.items() if k != "merkle"}
    shuffled = json.loads(json.dumps(body))
    for key in ("runs", "entities", "edges"):
        shuffled["closure"][key].reverse()
    assert merkle_root(certificate_leaves(shuffled)) == cert["merkle"]["root"]


def test_a_promoted_certificate_holds(lake: Lake, promoted: PromotionResult) -> None:
    assert verify_certificate(lake.config, promoted.certificate) == []
    cert = _read(lake, promoted.certificate)
    assert [p["path"] for p in cert["products"]] == promoted.files
    assert cert["run_id"] == promoted.run_id and cert["version"] == promoted.version


# --- tampering -------------------------------------------------------------------------------

# what else each edit contradicts, besides the root (the receipts, the raw manifest)
ALSO_CAUGHT = {"commit": [("certificate-edited", "/git_commit")],
               "license": [("certificate-label-mismatch", "license")],
               "waiver": [], "issuer": []}


def test_any_edit_of_the_certificate_breaks_its_root(lake: Lake,
                                                     promoted: PromotionResult) -> None:
    rel = promoted.certificate
    original = _read(lake, rel)
    for edit, also in ALSO_CAUGHT.items():
        cert = json.loads(json.dumps(original))
        if edit == "commit":
            cert["closure"]["runs"][0]["git_commit"] = "f" * 40
        elif edit == "license":
            next(e for e in cert["closure"]["entities"] if e["kind"] == "raw")["license"] = "MIT"
        elif edit == "waiver":
            cert["waiver"] = {"approved_by": "nobody"}
        else:
            cert["issuer"]["version"] = "9.9.9"
        _write(lake, rel, cert, reseal=False)
        findings = verify_certificate(lake.config, rel)
        assert [(f.code, f.pointer) for f in findings] == [
            ("certificate-edited", "/merkle/root"), *also], edit


def test_a_resealed_certificate_is_still_checked_against_the_files(
        lake: Lake, chain: Chain, promoted: PromotionResult) -> None:
    rel = promoted.certificate
    cert = _read(lake, rel)
    cert["checks"][0]["status"] = "fail"  # resealed: the root holds, the content does not
    _write(lake, rel, cert, reseal=True)
    assert codes_of(lake, rel) == ["certificate-edited"]
    cert["checks"][0]["status"] = "pass"
    cert["run_id"] = "01HK15B7C0X8C2V61ZN8VGMM21"  # certifies a run not in its closure
    _write(lake, rel, cert, reseal=True)
    assert codes_of(lake, rel) == ["certificate-edited"]


def test_a_certificate_copied_to_another_version_does_not_hold(
        lake: Lake, promoted: PromotionResult) -> None:
    copy = promoted.certificate.replace("v1.certificate", "v2.certificate")
    shutil.copyfile(lake.root / promoted.certificate, lake.root / copy)
    findings = verify_certificate(lake.config, copy)
    assert [f.code for f in findings] == ["certificate-edited"]
    assert "another family, version or run" in findings[0].message


def test_changed_and_missing_files_of_the_closure_are_named(
        lake: Lake, chain: Chain, promoted: PromotionResult) -> None:
    rel = promoted.certificate
    product = promoted.files[0]
    (lake.root / product).write_text("forged")
    findings = verify_certificate(lake.config, rel)
    assert [(f.code, f.file) for f in findings] == [("file-modified", product)]
    (lake.root / chain.raw).unlink()
    assert codes_of(lake, rel) == ["file-missing", "file-modified"]


def test_edited_receipts_and_a_removed_run_are_named(
        lake: Lake, chain: Chain, promoted: PromotionResult) -> None:
    rel = promoted.certificate
    log = chain.a.dir / "logs/run.log"
    log.write_text(log.read_text() + "one more line\n")
    findings = verify_certificate(lake.config, rel)
    assert [(f.code, f.file) for f in findings] == [("receipt-modified", chain.a.rel_dir)]
    shutil.rmtree(chain.b.dir)
    assert codes_of(lake, rel) == ["receipt-modified", "run-missing"]


def test_an_unreadable_or_invalid_certificate_is_a_finding_not_a_crash(
        lake: Lake, promoted: PromotionResult) -> None:
    rel = promoted.certificate
    (lake.root / rel).write_text("{not json")
    [finding] = verify_certificate(lake.config, rel)
    assert finding.file == rel
    (lake.root / rel).write_text(json.dumps({"schema_version": "kfm.certificate.v1"}))
    findings = verify_certificate(lake.config, rel)
    assert findings and all(f.file == rel for f in findings)
