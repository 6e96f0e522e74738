"""The gate believes files it has just re-hashed, never the index (issue: gate integrity §1).

Each test edits the lake the way an attacker with write access, or a stale index, would,
and runs the real CLI: ``check`` and ``promote`` must refuse with the stable reason code.
"""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import pytest

from kfm_prov.lake import Lake
from tests.conftest import CODE, COMMIT, GEOJSON, Chain, CliInvoker, add_raw, snapshot


def _sql(lake: Lake, statement: str, *args: object) -> None:
    with sqlite3.connect(lake.config.dir("cache") / "lineage.sqlite") as conn:
        assert conn.execute(statement, args).rowcount >= 1


def _codes(run_cli: CliInvoker, run_id: str) -> set[str]:
    result = run_cli("check", run_id, "--json", expect=1)
    report = json.loads(result.stdout)
    return {f["code"] for c in report["checks"] for f in c.get("findings", [])}


def _failed_upstream(lake: Lake) -> tuple[str, str]:
    """raw → A (wrote its output, then failed) → B (a product from A's output)."""
    src = add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n")
    with pytest.raises(RuntimeError), lake.capture("glo", "pipelines/a", **CODE) as a:
        a.use(src)
        a.output("normalised.csv").write_text("ID\n1\n")
        raise RuntimeError("boom after writing")
    with lake.capture("glo", "pipelines/b", **CODE) as b:
        b.use(a.artifacts / "normalised.csv")
        b.output("parcels.geojson", role="product", sensitivity="public").write_text(GEOJSON)
    return a.run_id, b.run_id


def test_a_failed_run_marked_success_in_the_index_is_still_refused(
        lake: Lake, run_cli: CliInvoker) -> None:
    a, b = _failed_upstream(lake)
    assert "upstream-failed" in _codes(run_cli, b)
    _sql(lake, "UPDATE runs SET status = 'success' WHERE run_id = ?", a)
    before = snapshot(lake.root / "data/processed") if (lake.root / "data/processed").exists() \
        else {}
    codes = _codes(run_cli, b)
    assert {"upstream-failed", "index-stale"} <= codes
    run_cli("promote", b, expect=1)
    after = snapshot(lake.root / "data/processed") if (lake.root / "data/processed").exists() \
        else {}
    assert after == before  # nothing was published


def test_an_index_row_pointing_at_other_bytes_is_stale(lake: Lake, chain: Chain,
                                                        run_cli: CliInvoker) -> None:
    run_cli("check", chain.b.run_id)
    _sql(lake, "UPDATE io SET role = 'config' WHERE run_id = ? AND direction = 'in'",
         chain.b.run_id)
    assert "index-stale" in _codes(run_cli, chain.b.run_id)


def test_a_raised_secret_count_cannot_be_lowered_in_the_index(
        lake: Lake, run_cli: CliInvoker) -> None:
    src = add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n")
    with lake.capture("glo", "pipelines/b", **CODE) as b:
        b.use(src)
        b.output("parcels.geojson", role="product", sensitivity="public").write_text(GEOJSON)
    log = lake.root / b.rel_dir / "logs" / "extra.log"
    log.write_text("token: ghp_" + "a" * 36 + "\n")
    _sql(lake, "UPDATE runs SET secrets = 0, evidence_digest = ? WHERE run_id = ?",
         _fresh_evidence(lake, b.rel_dir), b.run_id)
    codes = _codes(run_cli, b.run_id)
    assert "secret-in-log" in codes
    assert "receipt-modified" not in codes  # the index was made to agree: the scan still runs


def _fresh_evidence(lake: Lake, run_dir: str) -> str:
    from kfm_prov.store.evidence import read_evidence

    return read_evidence(lake.config, [run_dir])[run_dir].digest


def _rewrite(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text())
    for pointer, value in changes.items():
        target = data
        *parents, last = pointer.split("__")
        for key in parents:
            target = target[int(key) if key.isdigit() else key]
        target[int(last) if last.isdigit() else last] = value
    path.write_text(json.dumps(data, indent=2))


def test_receipts_edited_to_say_success_are_refused_by_record_and_by_the_gate(
        lake: Lake, run_cli: CliInvoker) -> None:
    a, b = _failed_upstream(lake)
    row = lake.resolve_run(a)
    record = lake.root / row.run_dir / "run_record.json"
    _rewrite(record, status="success", exit_code=1)
    result = run_cli("record", row.run_dir, expect=1)
    assert "says success but exited 1" in result.stderr
    # and indexed anyway (a rebuild takes in what is on disk): the gate still refuses
    run_cli("index", "rebuild")
    assert "inconsistent-receipt" in _codes(run_cli, b)


def test_a_report_that_says_pass_over_a_failing_gate_is_refused(lake: Lake, chain: Chain,
                                                                 run_cli: CliInvoker) -> None:
    report = lake.root / chain.b.rel_dir / "validation_report.json"
    data = json.loads(report.read_text())
    data["gates"].append({"name": "topology", "status": "fail", "details": {}})
    report.write_text(json.dumps(data, indent=2))
    result = run_cli("record", chain.b.rel_dir, expect=1)
    assert "topology" in result.stderr
    run_cli("index", "rebuild")
    assert "inconsistent-receipt" in _codes(run_cli, chain.b.run_id)


# --- §2: a certificate is trusted only after it is verified ------------------------------

def _reseal(path: Path, edit) -> None:  # type: ignore[no-untyped-def]
    """Edit a certificate and recompute its Merkle root, as an attacker without a key can."""
    from kfm_prov.store.certificate import Certificate

    path.chmod(0o644)
    data = json.loads(path.read_text())
    edit(data)
    data.pop("merkle")
    path.write_text(json.dumps(Certificate.from_dict(data).sealed().to_dict(), indent=2))


def _downstream(lake: Lake, source: str) -> str:
    with lake.capture("derived", "pipelines/derived", **CODE) as run:
        run.use(source)
        run.output("summary.geojson", role="product", sensitivity="public").write_text(GEOJSON)
    return run.run_id


def test_a_forged_certificate_does_not_certify_an_orphan_file(lake: Lake,
                                                              run_cli: CliInvoker) -> None:
    orphan = lake.root / "data/processed/glo/v9/parcels.csv"
    orphan.parent.mkdir(parents=True)
    orphan.write_text("id\n1\n")
    digest = "sha256:" + __import__("hashlib").sha256(orphan.read_bytes()).hexdigest()
    forged = lake.root / "data/prov/glo/v9.certificate.json"
    forged.parent.mkdir(parents=True)
    forged.write_text(json.dumps({
        "family": "glo", "version": "v9", "run_id": "01JAAAAAAAAAAAAAAAAAAAAAAA",
        "issued_at": "2026-01-01T00:00:00Z", "closure": {},
        "products": [{"path": "data/processed/glo/v9/parcels.csv", "digest": digest,
                      "source_path": "x", "sensitivity": "public"}]}))
    run_cli("index", "rebuild")
    run_id = _downstream(lake, "data/processed/glo/v9/parcels.csv")
    assert "processed-uncertified" in _codes(run_cli, run_id)


def test_a_resealed_certificate_that_lowers_a_label_fails_verify_and_the_gate(
        lake: Lake, run_cli: CliInvoker) -> None:
    from tests.conftest import make_chain

    chain = make_chain(lake, sensitivity="restricted")
    product = lake.root / chain.b.rel_dir / "artifacts/parcels.geojson"
    assert product.exists()
    # promote as restricted: the product declared public descends from restricted data
    with lake.capture("glo", "pipelines/glo/parcels", **CODE) as b:
        b.use(chain.a.artifacts / "normalised.csv")
        b.output("parcels.geojson", role="product",
                 sensitivity="restricted").write_text(GEOJSON)
    promoted = lake.promote(b.run_id)
    run_cli("verify")

    def lower(data: dict) -> None:  # type: ignore[type-arg]
        data["products"][0]["sensitivity"] = "public"
        for entity in data["closure"]["entities"]:
            if entity["kind"] == "raw":
                entity["sensitivity"] = "public"

    _reseal(lake.root / promoted.certificate, lower)
    result = run_cli("verify", "--json", expect=1)
    codes = {f["code"] for f in json.loads(result.stdout)["findings"]}
    assert "certificate-broken" in codes
    assert "certificate-label-mismatch" in result.stdout
    run_id = _downstream(lake, promoted.files[0])
    assert "processed-uncertified" in _codes(run_cli, run_id)


def _item(lake: Lake, promoted) -> Path:  # type: ignore[no-untyped-def]
    path = lake.root / promoted.stac_item
    path.chmod(0o644)
    return path


@pytest.mark.parametrize("edit", ["bundle", "item-license", "asset-href", "asset-checksum",
                                  "dcat-license", "dcat-checksum"])
def test_edits_to_published_records_fail_verify(lake: Lake, promoted, run_cli: CliInvoker,  # type: ignore[no-untyped-def]
                                                edit: str) -> None:
    run_cli("verify")
    if edit == "bundle":
        path = lake.root / promoted.prov_bundle
        path.chmod(0o644)
        path.write_text("{}")
    elif edit.startswith("item") or edit.startswith("asset"):
        path = _item(lake, promoted)
        item = json.loads(path.read_text())
        key = next(iter(item["assets"]))
        if edit == "item-license":
            item["properties"]["license"] = "CC0-1.0"
        elif edit == "asset-href":
            item["assets"][key]["href"] = "../../../../README.md"
        else:
            item["assets"][key]["file:checksum"] = "1220" + "0" * 64
        path.write_text(json.dumps(item, indent=2))
    else:
        path = lake.root / promoted.dcat
        path.chmod(0o644)
        text = path.read_text()
        if edit == "dcat-license":
            assert "licenses/CC-BY-4.0" in text
            text = text.replace("licenses/CC-BY-4.0", "licenses/CC0-1.0")
        else:
            digest = json.loads((lake.root / promoted.certificate).read_text())[
                "products"][0]["digest"].removeprefix("sha256:")
            assert digest in text
            text = text.replace(digest, "0" * 64)
        path.write_text(text)
    result = run_cli("verify", expect=1)
    assert "record-modified" in result.stderr + result.stdout


# --- §5: one file, many makers: the derivation that was actually used ----------------------

def _maker(lake: Lake, src: str, commit: str) -> str:
    with lake.capture("glo", "pipelines/glo/normalise", **{**CODE, "commit": commit}) as run:
        run.use(src)
        run.output("normalised.csv").write_text("ID\n1\n")
    return run.rel_dir


def _consumer(lake: Lake, source: str | Path) -> str:
    with lake.capture("glo", "pipelines/glo/parcels", **CODE) as run:
        run.use(source)
        run.output("parcels.geojson", role="product", sensitivity="public").write_text(GEOJSON)
    return run.run_id


def test_a_rerun_from_committed_code_is_promotable_beside_the_dirty_run(
        lake: Lake, run_cli: CliInvoker) -> None:
    src = add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n", sensitivity="public")
    dirty = _maker(lake, src, COMMIT[:-1] + "f-dirty")
    clean = _maker(lake, src, COMMIT)  # the same bytes again, from committed code
    from_dirty = _consumer(lake, f"{dirty}/artifacts/normalised.csv")
    assert "dirty-commit" in _codes(run_cli, from_dirty)  # it read the dirty run's file
    from_clean = _consumer(lake, f"{clean}/artifacts/normalised.csv")
    run_cli("check", from_clean)
    shared = lake.root / "data/work/shared/normalised.csv"  # a copy at no run's path
    shared.parent.mkdir(parents=True)
    shared.write_bytes((lake.root / clean / "artifacts/normalised.csv").read_bytes())
    from_copy = _consumer(lake, shared)
    run_cli("check", from_copy)  # a qualifying producer exists: the clean rerun
    promoted = json.loads(run_cli("promote", from_clean, "--json").stdout)
    cert = json.loads((lake.root / promoted["certificate"]).read_text())
    assert {r["run_dir"] for r in cert["closure"]["runs"]} >= {clean}
    assert dirty not in {r["run_dir"] for r in cert["closure"]["runs"]}


def test_trace_of_a_version_follows_the_certified_derivation(lake: Lake,
                                                            run_cli: CliInvoker) -> None:
    src = add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n", sensitivity="public")
    first = _maker(lake, src, COMMIT)
    product_run = _consumer(lake, f"{first}/artifacts/normalised.csv")
    promoted = json.loads(run_cli("promote", product_run, "--json").stdout)
    later = _maker(lake, src, COMMIT)  # started after the version was certified
    for artifact in (promoted["files"][0], "glo-v1"):
        result = json.loads(run_cli("trace", artifact, "--format", "json").stdout)
        runs = {n["run_dir"] for n in result["nodes"] if n["kind"] == "run"}
        assert first in runs and later not in runs, artifact
    # asked about the bytes themselves, every maker is shown
    digest = json.loads((lake.root / promoted["certificate"]).read_text())["products"][0][
        "digest"]
    assert json.loads(run_cli("trace", digest, "--format", "json").stdout)["ok"]


def test_a_file_used_by_the_run_that_made_it_is_a_cycle(lake: Lake,
                                                        run_cli: CliInvoker) -> None:
    src = add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n", sensitivity="public")
    with lake.capture("glo", "pipelines/glo/loop", **CODE) as run:
        run.use(src)
        loop = run.output("parcels.geojson", role="product", sensitivity="public")
        loop.write_text(GEOJSON)
        run.use(loop)
    assert "cycle" in _codes(run_cli, run.run_id)


def test_a_pass_through_copy_is_no_self_loop_and_the_lake_prov_stays_valid(
        lake: Lake, run_cli: CliInvoker, tmp_path: Path) -> None:
    src = add_raw(lake, "data/raw/glo/parcels.geojson", GEOJSON, sensitivity="public")
    with lake.capture("glo", "pipelines/glo/copy", **CODE) as run:
        run.use(src)
        run.output("parcels.geojson", role="product",
                   sensitivity="public").write_bytes((lake.root / src).read_bytes())
    again = _maker(lake, src, COMMIT), _maker(lake, src, COMMIT)  # same bytes, two makers
    assert again[0] != again[1]
    result = json.loads(run_cli("trace", f"{run.rel_dir}/artifacts/parcels.geojson",
                                "--format", "json").stdout)
    generated = [e for e in result["edges"] if e["relation"] == "generated"]
    assert generated == []  # the bytes came from the raw file; the run only copied them
    run_cli("promote", run.run_id)
    out = tmp_path / "lake.json"
    run_cli("export", "--format", "prov-json", "-o", str(out))
    run_cli("prov-check", str(out))  # the union of every document is valid PROV


def test_verify_and_trace_verify_agree_after_gc_collects_upstream_artifacts(
        lake: Lake, chain: Chain, run_cli: CliInvoker) -> None:
    run_cli("gc", "--keep", "1", "--min-age-hours", "0", "--apply")
    assert not (lake.root / chain.a.rel_dir / "artifacts/normalised.csv").exists()
    run_cli("verify")
    result = run_cli("trace", chain.product, "--verify", "--format", "json")
    assert json.loads(result.stdout)["ok"]
    run_cli("check", chain.b.run_id)  # the proof never rested on the scratch file
    # a missing raw source is still an issue for both
    (lake.root / chain.raw).chmod(0o644)
    (lake.root / chain.raw).unlink()
    for command in (("verify",), ("trace", chain.b.run_id, "--verify")):
        assert run_cli(*command, expect=1).exit_code == 1
