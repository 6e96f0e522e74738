"""Run capture through the Python API: receipts, logs, PROV, index, failure modes."""

from __future__ import annotations

import json
import shutil

import prov
import pytest

from kfm_prov.errors import CheckFailed, InputError, UsageError
from kfm_prov.lake import Lake
from kfm_prov.validate import validate_path
from tests.conftest import CODE, COMMIT, add_raw, write


def test_capture_writes_valid_receipts_prov_logs_and_index(lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/patents.csv", "id,name\n1,Smith\n")
    with lake.capture("glo", "pipelines/glo", params={"crs": "EPSG:4326"},
                      **CODE) as run:
        rows = run.use(src).read_text().splitlines()
        run.output("normalised.csv", role="product").write_text("\n".join(rows).upper())
        run.gate("schema", "pass", {"rows": 1})
        run.log("normalised", rows=len(rows))
    result = run.result
    assert result is not None and result.status == "success"
    assert result.overall_status == "pass"
    run_dir = lake.root / result.run_dir
    assert validate_path(run_dir, display=result.run_dir) == []
    record = json.loads((run_dir / "run_record.json").read_text())
    assert record["status"] == "success" and record["git_commit"] == COMMIT
    assert record["ended_at"] >= record["started_at"]
    manifest = json.loads((run_dir / "run_manifest.json").read_text())
    assert [i["path"] for i in manifest["inputs"]] == [src]
    assert manifest["outputs"][0]["role"] == "product"
    assert manifest["outputs"][0]["path"].endswith("/artifacts/normalised.csv")
    report = json.loads((run_dir / "validation_report.json").read_text())
    assert {g["name"]: g["status"] for g in report["gates"]} == {
        "schema": "pass", "inputs_unchanged": "pass", "outputs": "pass"}
    log_lines = (run_dir / "logs" / "run.jsonl").read_text().splitlines()
    assert any(json.loads(line).get("fields") == {"rows": 2} for line in log_lines)
    assert "normalised" in (run_dir / "logs" / "run.log").read_text()
    doc = prov.read(run_dir / "prov.json", format="json")
    activity = next(iter(doc.get_records(prov.model.ProvActivity)))
    assert str(activity.identifier) == f"kfm:run-{result.run_id}"
    assert len(list(doc.get_records(prov.model.ProvUsage))) == 1
    with lake.index() as index:
        assert index.run(result.run_id).status == "success"
        assert [r.path for r in index.files([result.run_id], "in")] == [src]


def test_prov_json_is_byte_identical_for_the_same_receipts(lake: Lake) -> None:
    from kfm_prov.record import publish_run
    from kfm_prov.store.receipts import load_run_receipts

    src = add_raw(lake, "data/raw/glo/a.csv", "a")
    with lake.capture("glo", "p", **CODE) as run:
        run.use(src)
        run.output("o.csv").write_text("o")
    first = (run.dir / "prov.json").read_bytes()
    receipts = load_run_receipts(run.dir, display=run.rel_dir)
    publish_run(lake.config, run.rel_dir, receipts)
    assert (run.dir / "prov.json").read_bytes() == first
    text = first.decode()
    assert "data/raw/glo/a.csv" in text  # path as attribute ...
    assert "kfm:file-raw-" in text  # ... never in an identifier
    assert '"kfm:license": "CC-BY-4.0"' in text


def test_exception_in_block_records_failed_and_reraises(lake: Lake) -> None:
    with pytest.raises(ZeroDivisionError), lake.capture("glo", "p", **CODE) as run:
        run.output("half.csv").write_text("partial")
        1 / 0  # noqa: B018
    record = json.loads((run.dir / "run_record.json").read_text())
    assert record["status"] == "failed"
    assert validate_path(run.dir, display="run") == []
    assert "ZeroDivisionError" in (run.dir / "logs" / "run.log").read_text()
    assert lake.runs()[0].status == "failed"


def test_declared_output_never_written_fails_the_run(lake: Lake) -> None:
    with pytest.raises(CheckFailed, match="failed its own checks"), \
            lake.capture("glo", "p", **CODE) as run:
        run.output("never.csv", role="product")
    report = json.loads((run.dir / "validation_report.json").read_text())
    gate = next(g for g in report["gates"] if g["name"] == "outputs")
    assert gate["status"] == "fail"
    assert gate["details"]["missing"][0].endswith("artifacts/never.csv")
    assert report["overall_status"] == "fail"
    assert json.loads((run.dir / "run_record.json").read_text())["status"] == "failed"


def test_input_changed_while_running_is_recorded(lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/a.csv", "before")
    with pytest.raises(CheckFailed), lake.capture("glo", "p", **CODE) as run:
        run.use(src)
        (lake.root / src).write_text("after, while the run was reading")
        run.output("o.csv").write_text("o")
    manifest = json.loads((run.dir / "run_manifest.json").read_text())
    assert manifest["inputs"][0]["changed_during_run"] is True
    report = json.loads((run.dir / "validation_report.json").read_text())
    gate = next(g for g in report["gates"] if g["name"] == "inputs_unchanged")
    assert gate["status"] == "fail" and gate["details"]["changed"][0]["path"] == src


def test_undeclared_artifacts_are_recorded_and_symlinks_refused(lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/a.csv", "a")
    with pytest.raises(CheckFailed), lake.capture("glo", "p", **CODE) as run:
        run.use(src)
        write(run.artifacts / "extra" / "side.csv", "side")
        (run.artifacts / "link.csv").symlink_to(lake.root / src)
    manifest = json.loads((run.dir / "run_manifest.json").read_text())
    assert [o["path"].split("/artifacts/")[1] for o in manifest["outputs"]] == ["extra/side.csv"]
    report = json.loads((run.dir / "validation_report.json").read_text())
    gate = next(g for g in report["gates"] if g["name"] == "outputs")
    assert gate["details"]["symlinks_refused"][0].endswith("link.csv")


def test_secrets_are_scrubbed_and_reported(lake: Lake) -> None:
    token = "ghp_" + "a1B2c3D4e5F6g7H8i9J0k1L2m3N4o5P6q7R8"
    with lake.capture("glo", "p", **CODE,
                      params={"db_url": "postgres://etl:hunter2pass@db.example.org/gis",
                              "api_token": token}) as run:
        run.log(f"calling the API with {token}")
        run.output("o.csv").write_text("o")
    written = "".join(p.read_text() for p in run.dir.rglob("*") if p.is_file())
    assert token not in written and "hunter2pass" not in written
    manifest = json.loads((run.dir / "run_manifest.json").read_text())
    assert manifest["params"]["api_token"] == "[REDACTED]"
    assert manifest["params"]["db_url"].startswith("postgres://etl:")
    report = json.loads((run.dir / "validation_report.json").read_text())
    gate = next(g for g in report["gates"] if g["name"] == "secrets")
    locations = {r["location"] for r in gate["details"]["redacted"]}
    assert "/params/api_token" in locations and "/params/db_url" in locations


@pytest.mark.parametrize("family", ["../etc", "a/b", "", ".hidden", "x" * 65])
def test_bad_family_names_are_refused_before_anything_is_written(lake: Lake,
                                                                 family: str) -> None:
    with pytest.raises(UsageError), lake.capture(family, "p", **CODE):
        pass
    assert list(lake.config.dir("runs").iterdir()) == []


def test_missing_input_is_an_input_error(lake: Lake) -> None:
    with pytest.raises(InputError, match="does not exist"), \
            lake.capture("glo", "p", **CODE) as run:
        run.use("data/raw/glo/nope.csv")
    assert json.loads((run.dir / "run_record.json").read_text())["status"] == "failed"


def test_three_run_chain_joins_by_digest_although_every_path_differs(lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n2\n")
    with lake.capture("glo", "pipelines/a", **CODE) as a:
        a.use(src)
        a.output("a.csv").write_text((lake.root / src).read_text().upper())
    a_out = lake.root / a.rel_dir / "artifacts" / "a.csv"
    moved_a = write(lake.root / "data/work/shared/renamed-a.csv", a_out.read_bytes())
    with lake.capture("glo", "pipelines/b", **CODE) as b:
        b.use(moved_a)
        b.output("b.csv").write_text("b derived")
    moved_b = lake.root / "data/work/elsewhere/b-copy.csv"
    write(moved_b, (lake.root / b.rel_dir / "artifacts" / "b.csv").read_bytes())
    with lake.capture("nhgis", "pipelines/c", **CODE) as c:
        c.use(moved_b)
        c.output("c.csv", role="product").write_text("c final")
    graph = lake.lineage(c.run_id)
    import networkx as nx

    raw_nodes = [n for n, d in graph.nodes(data=True) if d.get("raw")]
    assert len(raw_nodes) == 1
    assert graph.nodes[raw_nodes[0]]["raw"]["path"] == src
    path = nx.shortest_path(graph, raw_nodes[0], f"run:{c.run_id}")
    assert [n for n in path if n.startswith("run:")] == [
        f"run:{a.run_id}", f"run:{b.run_id}", f"run:{c.run_id}"]
    with lake.index() as index:
        assert index.upstream_runs(c.run_id) == [b.run_id]
        assert index.upstream_runs(b.run_id) == [a.run_id]
        assert index.orphans() == []


def test_orphan_inputs_are_known_to_the_index(lake: Lake) -> None:
    stray = write(lake.root / "data/work/stray.csv", "from nowhere")
    with lake.capture("glo", "p", **CODE) as run:
        run.use(stray)
        run.output("o.csv").write_text("o")
    with lake.index() as index:
        assert [o.path for o in index.orphans()] == ["data/work/stray.csv"]


def test_index_rebuild_gives_the_same_answers(lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/a.csv", "a")
    for step in range(3):
        with lake.capture("glo", f"p{step}", **CODE) as run:
            run.use(src)
            run.output("o.csv").write_text(f"o{step}")
    with lake.index() as index:
        before = index.dump()
    shutil.rmtree(lake.config.dir("cache"))
    result = lake.rebuild_index()
    assert (result.runs, result.raw_files, result.skipped) == (3, 1, [])
    with lake.index() as index:
        assert index.dump() == before


def test_a_spec_file_is_hashed_canonically_and_used_as_config(lake: Lake) -> None:
    from kfm_prov.store.digests import spec_hash

    write(lake.root / "pipelines/spec.yml", "steps: [normalise, geocode]\nversion: 2\n")
    with lake.capture("glo", "p", **CODE, spec="pipelines/spec.yml") as run:
        run.output("o.csv").write_text("o")
    manifest = json.loads((run.dir / "run_manifest.json").read_text())
    assert manifest["spec_hash"] == spec_hash({"version": 2, "steps": ["normalise", "geocode"]})
    assert manifest["spec_path"] == "pipelines/spec.yml"


def test_runner_user_stays_out_of_prov_unless_configured(lake: Lake) -> None:
    from kfm_prov.store.receipts import Runner

    with lake.capture("glo", "p", **CODE,
                      runner=Runner("local", "host-1", "alice.smith")) as run:
        run.output("o.csv").write_text("o")
    assert "alice.smith" in (run.dir / "run_record.json").read_text()
    assert "alice.smith" not in (run.dir / "prov.json").read_text()
