"""``record``, the trust boundary for receipts a pipeline wrote itself (``Lake.record``).

It either takes a run in whole (receipts valid, files re-hashed, ``prov.json`` written,
indexed) or refuses with the right exception and exit code, having written nothing.
The CLI tests (tests/cli/test_run.py) see the same through ``kfm-prov record``.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from kfm_prov.errors import CheckFailed, InputError, KfmProvError
from kfm_prov.lake import Lake
from kfm_prov.store.digests import sha256_file
from tests.cli.test_run import seed_run
from tests.conftest import COMMIT, PIPELINES, snapshot, write

RUN_ID = "01JD7Q8ZK3M4N5P6Q7R8S9T0VW"


def rel(lake: Lake, path: Path) -> str:
    return path.relative_to(lake.root).as_posix()


def edit(run_dir: Path, receipt: str, change: Callable[[dict[str, Any]], None]) -> None:
    path = run_dir / f"{receipt}.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def _committed(record: dict[str, Any]) -> None:
    """The run names the tests' pipeline repository, as a pipeline that writes receipts
    itself must for the gate to check its code (run record v2's ``code``)."""
    import subprocess

    blob = subprocess.run(["git", "-C", str(PIPELINES), "rev-parse", f"{COMMIT}:pipeline.py"],
                          check=True, capture_output=True, text=True).stdout.strip()
    record.update(schema_version="kfm.run_record.v2", git_commit=COMMIT, code={
        "repository": None, "worktree": str(PIPELINES), "entry": "pipeline.py",
        "entry_blob": blob, "problems": []})


def test_a_pipeline_written_run_is_taken_in_whole_and_is_promotable(lake: Lake) -> None:
    run_dir = seed_run(lake)
    edit(run_dir, "run_manifest", lambda m: m["outputs"][0].update(role="product"))
    edit(run_dir, "run_record", _committed)
    recorded = lake.record(run_dir)
    assert (recorded.run_id, recorded.status, recorded.overall_status) == (RUN_ID, "success",
                                                                            "pass")
    assert recorded.prov == f"{rel(lake, run_dir)}/prov.json"
    assert (lake.root / recorded.prov).is_file()
    row = lake.resolve_run(RUN_ID)
    assert (row.run_dir, row.family, row.secrets) == (rel(lake, run_dir), "example_dataset", 0)
    report = lake.check(RUN_ID)
    assert report.ok, report.findings  # the gate accepts what record accepted


def test_recording_again_changes_nothing(lake: Lake) -> None:
    run_dir = seed_run(lake)
    first = lake.record(run_dir)
    with lake.index() as index:
        dump = index.dump()
    state = snapshot(lake.root / "data")
    assert lake.record(run_dir) == first
    assert snapshot(lake.root / "data") == state  # prov.json rewritten with the same bytes
    with lake.index() as index:
        assert index.dump() == dump
    lake.rebuild_index()  # and the index is what the files say
    with lake.index() as index:
        assert index.dump() == dump


def _forge_output(run_dir: Path) -> None:
    (run_dir / "artifacts/table.csv").write_text("forged")


def _drop_output(run_dir: Path) -> None:
    (run_dir / "artifacts/table.csv").unlink()


def _output_outside(run_dir: Path) -> None:
    elsewhere = write(run_dir.parent / "loose.csv", "x\n")
    edit(run_dir, "run_manifest", lambda m: m["outputs"][0].update(
        path=f"data/work/runs/example_dataset/{elsewhere.name}",
        digest=sha256_file(elsewhere)))


def _input_escapes(run_dir: Path) -> None:
    edit(run_dir, "run_manifest", lambda m: m["inputs"][0].update(path="../outside.csv"))


def _still_running(run_dir: Path) -> None:
    edit(run_dir, "run_record", lambda r: r.update(status="running", ended_at=None))


def _secret(run_dir: Path) -> None:
    edit(run_dir, "run_record", lambda r: r.update(environment={"STRIPE_KEY":
                                                                "plain-looking-value-1234"}))


def _invalid(run_dir: Path) -> None:
    edit(run_dir, "validation_report", lambda r: r.update(overall_status="great"))


def _moved(run_dir: Path) -> None:
    edit(run_dir, "run_record", lambda r: r.update(run_id="01JD7Q8ZK3M4N5P6Q7R8S9T0VX"))
    for receipt in ("run_manifest", "validation_report"):
        edit(run_dir, receipt, lambda r: r.update(run_id="01JD7Q8ZK3M4N5P6Q7R8S9T0VX"))


REFUSALS = {  # what the pipeline got wrong → (exception, code or field the error names)
    "forged output": (_forge_output, CheckFailed, "/outputs/0/digest"),
    "missing output": (_drop_output, CheckFailed, "/outputs/0/path"),
    "secret in a receipt": (_secret, CheckFailed, "/environment/STRIPE_KEY"),
    "output outside artifacts": (_output_outside, InputError, "/outputs/0/path"),
    "input outside the root": (_input_escapes, InputError, "/inputs/0/path"),
    "still running": (_still_running, InputError, "/status"),
    "invalid receipt": (_invalid, InputError, "/overall_status"),
    "run id of another directory": (_moved, InputError, "/run_id"),
}


@pytest.mark.parametrize("case", sorted(REFUSALS))
def test_each_refusal_has_its_exit_code_names_the_field_and_writes_nothing(
        lake: Lake, case: str) -> None:
    spoil, error, where = REFUSALS[case]
    run_dir = seed_run(lake)
    spoil(run_dir)
    before = snapshot(lake.root)
    with lake.index() as index:
        indexed = index.dump()
    with pytest.raises(error) as raised:
        lake.record(run_dir)
    exc: KfmProvError = raised.value
    assert exc.exit_code == (1 if error is CheckFailed else 2)
    named = [exc.field or "", exc.message] + [f.pointer or "" for f in exc.findings]
    assert any(where in text for text in named), (case, exc.one_line())
    assert "plain-looking" not in exc.one_line()  # a secret is named, never shown
    assert snapshot(lake.root) == before, case
    assert not (run_dir / "prov.json").exists()
    with lake.index() as index:
        assert index.dump() == indexed


def test_what_is_not_a_run_directory_is_refused(lake: Lake) -> None:
    write(lake.root / "data/work/runs/example_dataset/file.txt", "x")
    with pytest.raises(InputError, match="not a run directory"):
        lake.record(lake.root / "data/work/runs/example_dataset/file.txt")
    with pytest.raises(InputError):
        lake.record(lake.root / "../elsewhere")
    with pytest.raises(InputError):
        lake.record(str(lake.root.parent))  # absolute, outside the lake
