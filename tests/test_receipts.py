from __future__ import annotations

import copy
import json
import shutil
from pathlib import Path

import pytest

from kfm_prov.core.validation import validate_data
from kfm_prov.store.receipts import (
    RunManifest,
    RunRecord,
    ValidationReport,
    Waiver,
    load_run_receipts,
)
from tests.conftest import one_error_line, write

SEED = Path(__file__).parent / "data" / "seed"
RUN_ID = "01JD7Q8ZK3M4N5P6Q7R8S9T0VW"


def seed(name: str) -> dict:
    return json.loads((SEED / f"{name}.json").read_text())


def seed_run(tmp_path: Path) -> Path:
    run_dir = tmp_path / "run"
    shutil.copytree(SEED, run_dir)
    return run_dir


@pytest.mark.parametrize("kind", ["run_record", "run_manifest", "validation_report"])
def test_seed_skeletons_validate(kind: str) -> None:
    assert validate_data(kind, seed(kind), file=kind) == []


WAIVER = {"run_id": RUN_ID, "approved_by": "data steward", "reason": "known gap",
          "gates": ["geometry_validity"], "expires_at": "2027-01-01T00:00:00Z"}


@pytest.mark.parametrize(("model", "data"), [
    (RunRecord, seed("run_record")),
    (RunManifest, seed("run_manifest")),
    (ValidationReport, seed("validation_report")),
    (Waiver, WAIVER),
])
def test_models_round_trip_and_keep_unknown_keys(model, data: dict) -> None:
    data = {**copy.deepcopy(data), "x_pipeline_note": {"kept": True}}
    once = model.from_dict(data).to_dict()
    assert once["x_pipeline_note"] == {"kept": True}
    assert once["schema_version"].startswith("kfm.")
    assert model.from_dict(once).to_dict() == once
    kind = {"RunRecord": "run_record", "RunManifest": "run_manifest",
            "ValidationReport": "validation_report", "Waiver": "waiver"}[model.__name__]
    assert validate_data(kind, once, file="x") == []


def test_bare_digests_are_normalised_on_reading() -> None:
    data = seed("run_manifest")
    data["inputs"][0]["digest"] = data["inputs"][0]["digest"].removeprefix("sha256:")
    manifest = RunManifest.from_dict(data)
    assert manifest.inputs[0].digest.startswith("sha256:")


@pytest.mark.parametrize(("kind", "mutate", "pointer"), [
    ("run_record", lambda d: d.pop("git_commit"), "/"),
    ("run_record", lambda d: d.update(status="done"), "/status"),
    ("run_record", lambda d: d.update(started_at="yesterday"), "/started_at"),
    ("run_record", lambda d: d.update(dataset_family="../etc"), "/dataset_family"),
    ("run_manifest", lambda d: d["inputs"][0].update(digest="sha256:abc"), "/inputs/0/digest"),
    ("run_manifest", lambda d: d["inputs"][0].update(path="/etc/passwd"), "/inputs/0/path"),
    ("run_manifest", lambda d: d["outputs"][0].update(path="data/../../x"), "/outputs/0/path"),
    ("run_manifest", lambda d: d.update(params=[]), "/params"),
    ("validation_report", lambda d: d.update(overall_status="ok"), "/overall_status"),
    ("validation_report", lambda d: d["gates"][0].update(status=1), "/gates/0/status"),
])
def test_schema_findings_carry_the_pointer(kind: str, mutate, pointer: str) -> None:
    data = seed(kind)
    mutate(data)
    findings = validate_data(kind, data, file=f"{kind}.json")
    assert findings, "expected a finding"
    assert pointer in [f.pointer for f in findings]
    assert all(f.file == f"{kind}.json" for f in findings)


def test_cli_validate_reports_every_problem_as_json(run_cli, tmp_path: Path) -> None:
    run_dir = seed_run(tmp_path)
    record = json.loads((run_dir / "run_record.json").read_text())
    record["status"] = "done"
    del record["runner"]
    (run_dir / "run_record.json").write_text(json.dumps(record))
    (run_dir / "validation_report.json").write_text('{"run_id": "x",')
    result = run_cli("validate", str(run_dir), "--json", expect=1)
    report = json.loads(result.stdout)
    assert report["ok"] is False
    codes = {(f["code"], f.get("pointer")) for f in report["findings"]}
    assert ("schema", "/status") in codes
    assert ("schema", "/") in codes  # runner missing
    assert any(c == "malformed-json" for c, _ in codes)


def test_cli_validate_clean_run_and_single_file(run_cli, tmp_path: Path) -> None:
    run_dir = seed_run(tmp_path)
    assert "valid" in run_cli("validate", str(run_dir)).stdout
    run_cli("validate", str(run_dir / "run_manifest.json"))
    write(run_dir / "waiver.json", json.dumps({**WAIVER, "expires_at": "soon"}))
    result = run_cli("validate", str(run_dir), expect=1)
    assert "waiver.json: /expires_at" in result.stdout


def test_duplicate_keys_and_mismatched_run_ids(run_cli, tmp_path: Path) -> None:
    run_dir = seed_run(tmp_path)
    text = (run_dir / "run_record.json").read_text()
    doubled = text.replace('"status": "success"', '"status": "success", "status": "failed"')
    (run_dir / "run_record.json").write_text(doubled)
    result = run_cli("validate", str(run_dir / "run_record.json"), expect=1)
    assert "duplicate key 'status'" in result.stdout
    run_dir2 = seed_run(tmp_path / "b")
    manifest = json.loads((run_dir2 / "run_manifest.json").read_text())
    manifest["run_id"] = "01JD7Q8ZK3M4N5P6Q7R8S9T0VX"
    (run_dir2 / "run_manifest.json").write_text(json.dumps(manifest))
    assert "run-id-mismatch" in run_cli("validate", str(run_dir2), expect=1).stdout


def test_validate_unknown_kind_and_missing_target(run_cli, tmp_path: Path) -> None:
    write(tmp_path / "other.json", "{}")
    assert "cannot tell which receipt" in one_error_line(
        run_cli("validate", str(tmp_path / "other.json"), expect=2))
    assert "no such file" in one_error_line(run_cli("validate", str(tmp_path / "no"), expect=2))


def test_load_run_receipts_gives_models(tmp_path: Path) -> None:
    receipts = load_run_receipts(seed_run(tmp_path), display="run")
    assert receipts.record.status == "success"
    assert receipts.manifest.inputs[0].role == "primary"
    assert receipts.report.gates[1].name == "geometry_validity"
