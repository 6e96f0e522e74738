"""Typed records round-trip: ``from_dict(d).to_dict() == d`` for what kfm-prov writes."""

from __future__ import annotations

import json

import pytest

from kfm_prov.core.findings import Finding
from kfm_prov.lake import Lake
from kfm_prov.publish.journal import Journal, Move, read_journal, write_journal
from kfm_prov.publish.promote import PromotionResult
from kfm_prov.store.certificate import (
    Certificate,
    CheckOutcome,
    ClosureRun,
    Entity,
    certificate_leaves,
    merkle_root,
    read_certificate,
)
from kfm_prov.store.refusal import Refusal
from tests.conftest import Chain, write


def test_a_written_certificate_round_trips_and_keeps_its_root(lake: Lake,
                                                              promoted: PromotionResult) -> None:
    data = json.loads((lake.root / promoted.certificate).read_text())
    cert = Certificate.from_dict(data)
    assert cert.to_dict() == data
    assert cert.sealed().merkle == data["merkle"]
    assert read_certificate(lake.config, promoted.certificate) == cert
    assert cert.product(data["products"][0]["digest"]) == data["products"][0]
    assert cert.product("sha256:" + "0" * 64) is None


def test_unknown_certificate_keys_are_kept_and_covered_by_the_root(
        lake: Lake, promoted: PromotionResult) -> None:
    data = json.loads((lake.root / promoted.certificate).read_text())
    data["future_field"] = {"x": 1}
    data["closure"]["future"] = [1]
    data["closure"]["runs"][0]["future"] = "y"
    cert = Certificate.from_dict(data)
    assert cert.to_dict() == data
    body = {k: v for k, v in data.items() if k != "merkle"}
    assert cert.sealed().merkle["root"] == merkle_root(certificate_leaves(body))
    assert cert.sealed().merkle["root"] != data["merkle"]["root"]  # the new keys count


def test_closure_parts_round_trip() -> None:
    run = {"run_id": "01J0000000000000000000000A", "family": "glo", "pipeline_id": "p",
           "status": "success", "git_commit": "abc", "spec_hash": "sha256:" + "1" * 64,
           "started_at": "2026-01-01T00:00:00Z", "ended_at": None, "run_dir": "d",
           "evidence_digest": "sha256:" + "2" * 64}
    assert ClosureRun.from_dict(run).to_dict() == run
    entity = {"path": "data/raw/a", "digest": "sha256:" + "3" * 64, "zone": "raw",
              "kind": "raw", "license": "CC0-1.0"}
    assert Entity.from_dict(entity).to_dict() == entity
    for check in ({"id": "a", "title": "A", "status": "pass"},
                  {"id": "b", "title": "B", "status": "fail", "reasons": ["x", "y"]}):
        assert CheckOutcome.from_dict(check).to_dict() == check


def test_a_written_refusal_round_trips(lake: Lake, chain: Chain, run_cli) -> None:  # type: ignore[no-untyped-def]
    write(lake.root / chain.raw, "id,name\n1,Changed\n")  # the raw capture was edited
    run_cli("promote", chain.b.run_id, expect=1)
    [path] = (lake.root / chain.b.rel_dir / "refusals").glob("*.json")
    data = json.loads(path.read_text())
    refusal = Refusal.from_dict(data)
    assert refusal.to_dict() == data
    assert refusal.run_id == chain.b.run_id
    assert any(c.status == "fail" for c in refusal.checks)
    assert all(isinstance(f, Finding) for f in refusal.findings) and refusal.findings
    assert path.name.startswith(refusal.refused_at[:10])


@pytest.mark.parametrize("nodes", [None, ("run:a", "file:b")])
def test_findings_round_trip(nodes: tuple[str, ...] | None) -> None:
    finding = Finding("code", "message", "file", "/pointer", "hint", nodes)
    assert Finding.from_dict(finding.to_dict()) == finding


def test_a_journal_round_trips_through_its_file(lake: Lake) -> None:
    journal = Journal("tx-1", "glo", "v1", (Move("version", "data/processed/glo/v1"),
                                             Move("f0", "data/prov/glo/v1.certificate.json")),
                      "data/work/staging/kfm-prov/tx-1")
    path = write_journal(lake.config, journal)
    assert read_journal(path) == journal
    assert Journal.from_dict(journal.to_dict()) == journal
    assert journal.certificate() == "data/prov/glo/v1.certificate.json"
    legacy = {k: v for k, v in journal.to_dict().items() if k != "schema_version"}
    assert Journal.from_dict(legacy) == journal  # journals of the first release still read


def test_a_certificate_with_steward_decisions_round_trips_under_its_root(
        lake: Lake, chain: Chain, run_cli) -> None:  # type: ignore[no-untyped-def]
    run_cli("raw", "relabel", chain.raw, "--attribution", "GLO office", "--reason", "renamed")
    promoted = lake.promote(chain.b.run_id)
    data = json.loads((lake.root / promoted.certificate).read_text())
    cert = Certificate.from_dict(data)
    assert cert.to_dict() == data and len(cert.steward_decisions) == 1
    assert cert.sealed().merkle == data["merkle"]
    data["steward_decisions"][0]["reason"] = "edited"  # the decisions are under the root
    assert Certificate.from_dict(data).sealed().merkle != cert.merkle


def test_label_trail_entries_round_trip(lake: Lake, chain: Chain) -> None:
    from kfm_prov.store.labels import LabelEvent, read_trail

    [event] = read_trail(lake.config, "data/raw/glo") or []
    assert LabelEvent.from_dict(event.to_dict()) == event
    data = {**event.to_dict(), "future": [1]}
    assert LabelEvent.from_dict(data).to_dict() == data
    assert LabelEvent.from_dict(data).entry_digest != event.entry_digest


def test_a_snapshot_certificate_with_carried_and_dropped_round_trips(
        lake: Lake, chain: Chain, promoted: PromotionResult) -> None:
    from kfm_prov.store.release import CarriedFrom
    from tests.conftest import CODE, GEOJSON

    with lake.capture("glo", "pipelines/glo/roads", **CODE) as roads:
        roads.use(chain.a.artifacts / "normalised.csv")
        roads.output("roads.geojson", role="product").write_text(GEOJSON)
    second = lake.promote(roads.run_id)  # carries parcels.geojson from v1
    data = json.loads((lake.root / second.certificate).read_text())
    cert = Certificate.from_dict(data)
    assert cert.to_dict() == data and cert.sealed().merkle == data["merkle"]
    ((_, entry),) = cert.carried()
    origin = CarriedFrom.from_dict(entry["carried_from"])
    assert origin.to_dict() == entry["carried_from"] and origin.version == "v1"
    with lake.capture("glo", "pipelines/glo/rivers", **CODE) as rivers:
        rivers.use(chain.a.artifacts / "normalised.csv")
        rivers.output("rivers.geojson", role="product").write_text(GEOJSON)
    third = lake.promote(rivers.run_id, drop=("roads.geojson",))
    data = json.loads((lake.root / third.certificate).read_text())
    cert = Certificate.from_dict(data)
    assert cert.to_dict() == data and cert.dropped == ("roads.geojson",)
    data["dropped"] = []  # what was dropped is under the root
    assert Certificate.from_dict(data).sealed().merkle != cert.merkle
