"""The gate and promotion end to end: a clean chain promotes, each defect is refused."""

from __future__ import annotations

import json

import prov

from kfm_prov.certificate import verify_certificate
from kfm_prov.constraints import check_constraints, validate_prov_json
from kfm_prov.lake import Lake
from kfm_prov.promote import PromotionResult
from tests.conftest import Chain


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
