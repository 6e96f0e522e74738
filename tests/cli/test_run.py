"""`kfm-prov run`, `record`, `runs`, `show`, `index rebuild` through the real CLI."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from kfm_prov.lake import Lake
from tests.conftest import CODE_ARGS, add_raw, one_error_line, snapshot, write

PY = sys.executable


def run_args(*extra: str) -> list[str]:
    return ["run", "--family", "glo", "--pipeline", "pipelines/glo", *CODE_ARGS, *extra]


def last_run(lake: Lake):
    return lake.runs()[-1]


def test_run_captures_any_command(run_cli, lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n")
    script = ("import os,sys; d=os.environ['KFM_ARTIFACTS_DIR'];"
              "open(os.path.join(d,'out.csv'),'w').write(open(sys.argv[1]).read().upper());"
              "print('wrote out.csv'); print('warning', file=sys.stderr)")
    result = run_cli(*run_args("-i", src, "-o", "out.csv:product:public", "--param", "year=2020",
                               "--param", "mode=fast", "--", PY, "-c", script, src))
    assert "wrote out.csv" in result.stdout
    assert "warning" in result.stderr
    run = last_run(lake)
    assert f"run {run.run_id} success" in result.stderr
    run_dir = lake.root / run.run_dir
    manifest = json.loads((run_dir / "run_manifest.json").read_text())
    assert manifest["params"] == {"year": 2020, "mode": "fast"}
    assert manifest["outputs"][0]["role"] == "product"
    assert manifest["outputs"][0]["sensitivity"] == "public"
    assert (run_dir / "logs" / "stdout.log").read_text() == "wrote out.csv\n"
    assert (run_dir / "logs" / "stderr.log").read_text() == "warning\n"
    record = json.loads((run_dir / "run_record.json").read_text())
    assert record["command"][0] == PY and record["exit_code"] == 0


def test_exit_code_becomes_status_and_ours(run_cli, lake: Lake) -> None:
    result = run_cli(*run_args("--", PY, "-c", "import sys; sys.exit(3)"), expect=3)
    assert "failed" in result.stderr
    assert last_run(lake).status == "failed"


def test_a_killed_command_is_failed_with_its_signal(run_cli, lake: Lake) -> None:
    run_cli(*run_args("--", "sh", "-c", "kill -9 $$"), expect=137)
    run = last_run(lake)
    assert run.status == "failed"
    assert "SIGKILL" in (lake.root / run.run_dir / "logs" / "run.log").read_text()


def test_an_output_the_command_never_wrote_fails_the_run(run_cli, lake: Lake) -> None:
    run_cli(*run_args("-o", "promised.csv", "--", PY, "-c", "pass"), expect=1)
    run = last_run(lake)
    assert run.status == "failed"
    report = json.loads((lake.root / run.run_dir / "validation_report.json").read_text())
    assert [g["status"] for g in report["gates"] if g["name"] == "outputs"] == ["fail"]


def test_missing_input_and_unknown_command(run_cli, lake: Lake) -> None:
    before = snapshot(lake.root)
    line = one_error_line(run_cli(*run_args("-i", "data/raw/glo/nope.csv", "--", "true"),
                                  expect=2))
    assert "data/raw/glo/nope.csv" in line
    assert snapshot(lake.root) == before
    run_cli(*run_args("--", "no-such-command-kfm"), expect=127)
    assert last_run(lake).status == "failed"


def test_secrets_on_the_command_line_and_in_output_never_reach_disk(run_cli, lake: Lake) -> None:
    token = "xoxb-" + "123456789012-1234567890123-abcdefghijABCDEFGHIJklmn"
    run_cli(*run_args("--param", f"slack={token}", "--", PY, "-c",
                      f"print('token is {token}')", "--token", token))
    run = last_run(lake)
    written = "".join(p.read_text() for p in (lake.root / run.run_dir).rglob("*")
                      if p.is_file())
    assert token not in written
    assert "[REDACTED]" in (lake.root / run.run_dir / "logs" / "stdout.log").read_text()


def test_a_private_key_printed_by_the_command_never_reaches_the_log(run_cli, lake: Lake) -> None:
    body = "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7"
    pem = f"-----BEGIN PRIVATE KEY-----\\n{body}\\n{body}\\n-----END PRIVATE KEY-----"
    run_cli(*run_args("--", PY, "-c", f"print('{pem}'); print('after')"))
    log = (lake.root / last_run(lake).run_dir / "logs" / "stdout.log").read_text()
    assert body not in log and "after" in log


def seed_run(lake: Lake, run_id: str = "01JD7Q8ZK3M4N5P6Q7R8S9T0VW") -> Path:
    """A run whose receipts the pipeline wrote itself, with real files behind them."""
    from kfm_prov.store.digests import sha256_file

    src = add_raw(lake, "data/raw/example_dataset/source.csv", "geoid,v\n1,2\n")
    run_dir = lake.root / "data/work/runs/example_dataset" / run_id
    out = write(run_dir / "artifacts" / "table.csv", "geoid,v\n1,2\n3,4\n")
    seed = Path(__file__).parent.parent / "data" / "seed"
    record = json.loads((seed / "run_record.json").read_text()) | {"run_id": run_id}
    manifest = json.loads((seed / "run_manifest.json").read_text()) | {"run_id": run_id}
    manifest["inputs"][0] = {"path": src, "digest": sha256_file(lake.root / src),
                             "role": "primary"}
    manifest["outputs"][0] = {"path": out.relative_to(lake.root).as_posix(),
                              "digest": sha256_file(out).removeprefix("sha256:"),
                              "role": "product"}
    report = json.loads((seed / "validation_report.json").read_text()) | {"run_id": run_id}
    for name, data in (("run_record", record), ("run_manifest", manifest),
                       ("validation_report", report)):
        write(run_dir / f"{name}.json", json.dumps(data, indent=2))
    return run_dir


def test_record_takes_in_pipeline_written_receipts(run_cli, lake: Lake) -> None:
    run_dir = seed_run(lake)
    rel = run_dir.relative_to(lake.root).as_posix()
    result = json.loads(run_cli("record", rel, "--json").stdout)
    assert result["status"] == "success" and result["prov"] == f"{rel}/prov.json"
    import prov
    doc = prov.read(run_dir / "prov.json", format="json")
    assert len(list(doc.get_records(prov.model.ProvGeneration))) == 2  # output + report
    shown = json.loads(run_cli("show", "01JD7Q8Z", "--json").stdout)
    assert shown["outputs"][0]["digest"].startswith("sha256:")  # bare digest normalised
    assert [g["name"] for g in shown["gates"]] == ["schema", "geometry_validity", "license"]


def test_record_refuses_wrong_digests_naming_each(run_cli, lake: Lake) -> None:
    run_dir = seed_run(lake)
    (run_dir / "artifacts" / "table.csv").write_text("forged")
    (lake.root / "data/raw/example_dataset/source.csv").write_text("changed raw")
    before = snapshot(lake.root)
    result = run_cli("record", run_dir.relative_to(lake.root).as_posix(), "--json",
                     expect=1)
    line = one_error_line(result)
    assert "refused to record" in line and "and 1 more" in line
    assert snapshot(lake.root) == before
    assert not (run_dir / "prov.json").exists()


def test_record_refuses_secrets_and_bad_receipts(run_cli, lake: Lake) -> None:
    run_dir = seed_run(lake)
    rel = run_dir.relative_to(lake.root).as_posix()
    manifest = json.loads((run_dir / "run_manifest.json").read_text())
    manifest["params"]["password"] = "correct horse battery staple"
    (run_dir / "run_manifest.json").write_text(json.dumps(manifest))
    line = one_error_line(run_cli("record", rel, expect=1))
    assert "secret" in line and "/params/password" in line
    assert "correct horse" not in line
    manifest["params"].pop("password")
    manifest["outputs"][0]["path"] = "/etc/passwd"
    (run_dir / "run_manifest.json").write_text(json.dumps(manifest))
    line = one_error_line(run_cli("record", rel, expect=2))
    assert "run_manifest.json: /outputs/0/path" in line
    manifest["outputs"][0]["path"] = "data/raw/example_dataset/source.csv"
    (run_dir / "run_manifest.json").write_text(json.dumps(manifest))
    assert "artifacts" in one_error_line(run_cli("record", rel, expect=2))


def test_record_refuses_a_secret_in_the_recorded_environment(run_cli, lake: Lake) -> None:
    run_dir = seed_run(lake)
    record = json.loads((run_dir / "run_record.json").read_text())
    record["environment"] = {"STRIPE_KEY": "plain-looking-value-1234", "TZ": "UTC"}
    (run_dir / "run_record.json").write_text(json.dumps(record))
    line = one_error_line(run_cli("record", run_dir.relative_to(lake.root).as_posix(),
                                  expect=1))
    assert "/environment/STRIPE_KEY" in line and "plain-looking" not in line


def test_record_refuses_a_run_dir_that_does_not_match_its_receipts(run_cli, lake: Lake) -> None:
    run_dir = seed_run(lake)
    moved = lake.root / "data/work/runs/example_dataset/01JD7Q8ZK3M4N5P6Q7R8S9T0VX"
    run_dir.rename(moved)
    line = one_error_line(run_cli("record", moved.relative_to(lake.root).as_posix(), expect=2))
    assert "must live in" in line


def test_runs_show_and_index_rebuild(run_cli, lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/a.csv", "a")
    run_cli(*run_args("-i", src, "--", "true"))
    listed = json.loads(run_cli("runs", "--family", "glo", "--json").stdout)
    assert len(listed) == 1 and listed[0]["status"] == "success"
    assert listed[0]["run_id"] in run_cli("runs").stdout
    assert json.loads(run_cli("runs", "--family", "other", "--json").stdout) == []
    assert "upstream runs: none" in run_cli("show", listed[0]["run_id"]).stdout
    assert "no run" in one_error_line(run_cli("show", "01NOPE00", expect=2))
    rebuilt = json.loads(run_cli("index", "rebuild", "--json").stdout)
    assert rebuilt["runs"] == 1 and rebuilt["raw_files"] == 1


def test_concurrent_runs_from_separate_processes_are_all_indexed(lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/a.csv", "a")
    procs = [subprocess.Popen(
        [PY, "-m", "kfm_prov.cli", "--root", str(lake.root), *run_args(
            "--family", f"fam{i % 3}", "-i", src, "--", PY, "-c",
            f"import os; open(os.environ['KFM_ARTIFACTS_DIR'] + '/o.csv', 'w').write('{i}')")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for i in range(8)]
    assert [p.wait(timeout=120) for p in procs] == [0] * 8
    with lake.index() as index:
        before = index.dump()
    assert len(before["runs"]) == 8
    lake.rebuild_index()
    with lake.index() as index:
        assert index.dump() == before
