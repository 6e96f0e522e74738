"""The PROV bundle of a promoted version (``kfm_prov.prov.bundle``): the closure, the
promotion, copies between zones, revisions and who asked, in one valid PROV document."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from kfm_prov.lake import Lake
from kfm_prov.prov.constraints import check_constraints, load_prov_document, validate_prov_json
from tests.conftest import CODE, GEOJSON, Chain, add_raw, make_chain
from tests.multi import Multi


def body(lake: Lake, family: str, version: str) -> dict[str, Any]:
    """The one named bundle of ``data/prov/<family>/<version>.json``, checked as PROV."""
    path = lake.root / f"data/prov/{family}/{version}.json"
    document = json.loads(path.read_text(encoding="utf-8"))
    assert list(document["bundle"]) == [f"kfm:bundle-{family}-{version}"]
    assert validate_prov_json(document) == []
    assert check_constraints(load_prov_document(path)) == []
    return document["bundle"][f"kfm:bundle-{family}-{version}"]


def ids(records: dict[str, Any], *, path: str | None = None, zone: str | None = None,
        digest: str | None = None) -> set[str]:
    """Entities by what they say (path, zone, digest), whatever their identifiers."""
    return {rid for rid, e in records["entity"].items()
            if (path is None or e.get("kfm:path") == path)
            and (zone is None or e.get("kfm:zone") == zone)
            and (digest is None or e.get("kfm:digest") == digest)}


def sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def derivations(records: dict[str, Any], kind: str | None = None) -> set[tuple[str, str]]:
    """(generated, used) of ``wasDerivedFrom`` records, of one ``prov:type`` if given."""
    return {(r["prov:generatedEntity"], r["prov:usedEntity"])
            for r in records.get("wasDerivedFrom", {}).values()
            if kind is None or r.get("prov:type", {}).get("$") == kind}


@pytest.mark.multi_lake
def test_a_revision_holds_its_closure_the_promotion_and_what_it_revises(
        lake: Lake, multi: Multi) -> None:
    records = body(lake, "fam2", "v2")
    # fam2 made the normalised bytes twice: the run whose output v2's run read is cited
    assert set(records["activity"]) == {f"kfm:run-{multi.fam2b_a}",
                                        f"kfm:run-{multi.fam2b_b}", "kfm:promotion-fam2-v2"}
    promotion = records["activity"]["kfm:promotion-fam2-v2"]
    assert promotion["prov:type"]["$"] == "kfm:Promotion"
    assert (promotion["kfm:family"], promotion["kfm:version"], promotion["kfm:runId"],
            promotion["kfm:certificate"]) == ("fam2", "v2", multi.fam2b_b,
                                              "data/prov/fam2/v2.certificate.json")
    [v1] = ids(records, path=multi.fam2_v1)
    [v2] = ids(records, path=multi.fam2_v2, digest=sha(lake.root / multi.fam2_v2))
    assert derivations(records, "prov:Revision") == {(v2, v1)}
    generated = {(r["prov:entity"], r["prov:activity"])
                 for r in records["wasGeneratedBy"].values()}
    assert (v2, "kfm:promotion-fam2-v2") in generated


@pytest.mark.multi_lake
def test_a_first_version_revises_nothing(lake: Lake, multi: Multi) -> None:
    records = body(lake, "glo", "v1")
    assert derivations(records, "prov:Revision") == set()
    assert {f"kfm:run-{multi.glo_a}", f"kfm:run-{multi.glo_b}"} <= set(records["activity"])


@pytest.mark.multi_lake
def test_a_certified_input_is_cited_not_reopened(lake: Lake, multi: Multi) -> None:
    records = body(lake, "joined", "v1")
    assert ids(records, zone="processed", digest=multi.glo_digest)
    assert f"kfm:run-{multi.glo_a}" not in records["activity"]  # glo's certificate vouches
    assert f"kfm:run-{multi.glo_b}" not in records["activity"]
    assert f"kfm:run-{multi.joined}" in records["activity"]


def test_the_same_bytes_in_two_zones_are_linked(lake: Lake) -> None:
    """A work copy of a raw file derives from the raw capture, each link recorded once."""
    src = add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n", sensitivity="public")
    with lake.capture("glo", "pipelines/glo/stage", **CODE) as stage:
        stage.use(src)
        stage.output("patents.csv").write_bytes((lake.root / src).read_bytes())
        stage.output("counts.csv").write_text("n\n1\n")  # puts the stage in the closure
    with lake.capture("glo", "pipelines/glo/parcels", **CODE) as parcels:
        parcels.use(stage.artifacts / "patents.csv")
        parcels.use(stage.artifacts / "counts.csv")
        parcels.output("parcels.geojson", role="product", sensitivity="public").write_text(
            GEOJSON)
    lake.promote(parcels.run_id)
    records = body(lake, "glo", "v1")
    digest = sha(lake.root / src)
    work = ids(records, zone="work", digest=digest)
    [raw] = ids(records, zone="raw", digest=digest)
    links = {pair for pair in derivations(records) if pair[0] in work}
    assert links and {used for _, used in links} == {raw}  # the copy derives from the capture
    assert len(records["wasDerivedFrom"]) == len(derivations(records))  # no duplicate


def _requesters(records: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {agent: attrs for agent, attrs in records["agent"].items()
            if agent.startswith("kfm:person-")}


def test_who_asked_is_a_pseudonym_unless_the_lake_publishes_names(lake: Lake,
                                                                  chain: Chain) -> None:
    lake.promote(chain.b.run_id, requested_by="Ada Lovelace")
    text = (lake.root / "data/prov/glo/v1.json").read_text(encoding="utf-8")
    assert "Ada Lovelace" not in text  # personal data stays in data/work
    person = f"kfm:person-{hashlib.sha256(b'Ada Lovelace').hexdigest()[:16]}"
    requesters = _requesters(body(lake, "glo", "v1"))
    assert list(requesters) == [person]
    assert requesters[person]["prov:type"]["$"] == "prov:Person"
    config = lake.root / "kfm-prov.toml"
    config.write_text(config.read_text().replace("publish_user = false", "publish_user = true"))
    published = Lake.open(lake.root)
    second = make_chain(published, product=GEOJSON.replace("-97.6", "-97.7"))  # new bytes
    published.promote(second.b.run_id, version="v2", requested_by="Ada Lovelace")
    assert _requesters(body(published, "glo", "v2"))[person]["kfm:name"] == "Ada Lovelace"
