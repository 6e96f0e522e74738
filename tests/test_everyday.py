"""Everyday surprises, fixed: a mistyped root, trace graphs, ``show`` and where
``kfm-prov run`` runs its command. Each through the real CLI."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from kfm_prov.cli.main import cli
from kfm_prov.errors import InputError, NotFoundError
from kfm_prov.lake import Lake
from kfm_prov.publish.promote import PromotionResult
from kfm_prov.runner import COMMAND_ENV
from tests.conftest import CODE, CODE_ARGS, Chain, add_raw, one_error_line, snapshot, write

PY = sys.executable


# --- a root that is not a lake ----------------------------------------------------------------

@pytest.mark.parametrize("command", [["runs"], ["verify"], ["trace", "x.csv"]])
def test_a_root_that_is_not_a_lake_is_an_error_that_writes_nothing(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, command: list[str]) -> None:
    plain = tmp_path / "plain"
    write(plain / "notes.txt", "not a lake\n")
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KFM_PROV_ROOT", raising=False)
    result = CliRunner().invoke(cli, ["--root", str(plain), *command])
    assert result.exit_code == 2
    line = one_error_line(result)
    assert "not a kfm-prov lake" in line and "kfm-prov init" in line
    assert snapshot(tmp_path) == before


def test_a_mistyped_root_or_variable_writes_nothing(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    Lake.init(tmp_path / "lake")
    before = snapshot(tmp_path)
    monkeypatch.chdir(tmp_path / "lake")
    result = CliRunner().invoke(cli, ["--root", str(tmp_path / "laek"), "runs"])
    assert result.exit_code == 2 and "does not exist" in one_error_line(result)
    monkeypatch.setenv("KFM_PROV_ROOT", str(tmp_path))  # the parent: not a lake
    result = CliRunner().invoke(cli, ["runs"])
    assert result.exit_code == 2 and "not a kfm-prov lake" in one_error_line(result)
    assert snapshot(tmp_path) == before


def test_lake_open_of_an_empty_path_or_a_plain_directory_raises(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("KFM_PROV_ROOT", raising=False)
    with pytest.raises(InputError, match="empty"):
        Lake.open("")
    with pytest.raises(NotFoundError, match="not a kfm-prov lake"):
        Lake.open(tmp_path)
    assert list(tmp_path.iterdir()) == []
    Lake.init(tmp_path / "lake")
    assert Lake.open(tmp_path / "lake").root == (tmp_path / "lake").resolve()


# --- trace graphs -------------------------------------------------------------------------------

def test_trace_graphs_read_top_to_bottom_unless_told(run_cli, lake: Lake,
                                                     promoted: PromotionResult) -> None:
    product = promoted.files[0]
    dot = run_cli("trace", product, "--format", "dot").stdout
    assert "  rankdir=TB;" in dot.splitlines()
    assert "  rankdir=LR;" in run_cli("trace", product, "--format", "dot", "--rankdir",
                                      "LR").stdout.splitlines()
    assert run_cli("trace", product, "--format", "mermaid").stdout.startswith("flowchart TB\n")
    assert run_cli("trace", product, "--format", "mermaid", "--rankdir", "LR"
                   ).stdout.startswith("flowchart LR\n")
    result = run_cli("trace", product, "--format", "dot", "--rankdir", "up", expect=2)
    assert "--rankdir" in result.stderr


def test_a_file_with_several_paths_names_them(run_cli, lake: Lake, chain: Chain,
                                              promoted: PromotionResult) -> None:
    """The promoted product's bytes are also the run's artifact: the graph names it."""
    dot = run_cli("trace", promoted.files[0], "--format", "dot").stdout
    assert f"also {chain.product}" in dot
    assert "more path" not in dot


def test_past_three_other_paths_the_rest_are_counted_or_all_listed(run_cli,
                                                                   lake: Lake) -> None:
    paths = [add_raw(lake, f"data/raw/glo/copy{i}.csv", "id\n1\n") for i in range(5)]
    with lake.capture("glo", "pipelines/glo/copy", **CODE) as run:
        run.use(paths[0])
        run.output("out.csv").write_text("ID\n1\n")
    out = f"{run.rel_dir}/artifacts/out.csv"
    dot = run_cli("trace", out, "--format", "dot").stdout
    assert len(re.findall(r"also data/raw/glo/copy\d\.csv", dot)) == 3
    assert "+1 more path (--all-paths)" in dot
    every = run_cli("trace", out, "--format", "mermaid", "--all-paths").stdout
    assert sorted(re.findall(r"also (data/raw/glo/copy\d\.csv)", every)) == sorted(paths[1:])
    assert "more path" not in every


# --- show ---------------------------------------------------------------------------------------

def _show(run_cli, run_id: str) -> dict[str, str]:
    lines = run_cli("show", run_id).stdout.splitlines()
    return {line[:10].strip(): line[10:] for line in lines if line[:1] != " "}


def test_show_prints_params_as_json_and_no_missing_exit_code(run_cli, lake: Lake) -> None:
    with lake.capture("glo", "pipelines/glo/api", **CODE,
                      params={"crs": "EPSG:4326", "years": [1854, 1900], "strict": True}) as run:
        run.output("o.txt").write_text("x\n")
    shown = _show(run_cli, run.run_id)
    assert json.loads(shown["params"]) == {"crs": "EPSG:4326", "years": [1854, 1900],
                                           "strict": True}
    assert shown["status"] == "success  validation pass"  # an API capture has no exit code
    assert "None" not in run_cli("show", run.run_id).stdout


def test_a_failed_run_does_not_show_validation_pass(run_cli, lake: Lake) -> None:
    script = ("import os; open(os.path.join(os.environ['KFM_ARTIFACTS_DIR'], 'o.csv'), 'w')"
              ".write('x'); raise SystemExit(3)")
    run_cli("run", "-f", "glo", "-p", "pipelines/glo", *CODE_ARGS, "-o", "o.csv",
            "--", PY, "-c", script, expect=3)
    run_id = lake.runs()[-1].run_id
    shown = _show(run_cli, run_id)
    assert shown["status"] == "failed  validation n/a (run failed)  exit 3"
    table = run_cli("runs").stdout
    assert "n/a (run failed)" in table and " pass " not in table


# --- where kfm-prov run runs ---------------------------------------------------------------------

ECHO_ENV = ("import os, json, sys; open(os.path.join(os.environ['KFM_ARTIFACTS_DIR'], 'env.json'),"
            " 'w').write(json.dumps({'cwd': os.getcwd(), **{k: os.environ[k] for k in"
            " sys.argv[1:]}}))")


def _env_of_last_run(lake: Lake) -> dict[str, str]:
    run = lake.runs()[-1]
    return json.loads((lake.root / run.run_dir / "artifacts" / "env.json").read_text())


def test_run_executes_in_the_lake_root_where_inputs_are_read(
        run_cli, lake: Lake, monkeypatch: pytest.MonkeyPatch) -> None:
    src = add_raw(lake, "data/raw/glo/patents.csv", "id\n1\n")
    monkeypatch.chdir(lake.root / "data" / "raw")  # the user stands somewhere else
    script = ECHO_ENV + "; open('data/raw/glo/patents.csv').read()  # as --input names it"
    run_cli("run", "-f", "glo", "-p", "pipelines/glo", *CODE_ARGS, "-i", src,
            "-o", "env.json", "--", PY, "-c", script, *COMMAND_ENV)
    env = _env_of_last_run(lake)
    assert Path(env["cwd"]) == lake.root.resolve()
    run = lake.runs()[-1]
    assert env["KFM_PROV_ROOT"] == str(lake.root)
    assert env["KFM_RUN_ID"] == run.run_id
    assert Path(env["KFM_RUN_DIR"]) == lake.root / run.run_dir
    assert Path(env["KFM_ARTIFACTS_DIR"]) == lake.root / run.run_dir / "artifacts"


def test_run_cwd_is_relative_to_the_root_and_checked_first(run_cli, lake: Lake) -> None:
    (lake.root / "pipelines" / "glo").mkdir(parents=True)
    run_cli("run", "-f", "glo", "-p", "pipelines/glo", *CODE_ARGS, "--cwd",
            "pipelines/glo", "-o", "env.json", "--", PY, "-c", ECHO_ENV)
    assert Path(_env_of_last_run(lake)["cwd"]) == (lake.root / "pipelines" / "glo").resolve()
    before = snapshot(lake.root)
    result = run_cli("run", "-f", "glo", "-p", "pipelines/glo", *CODE_ARGS, "--cwd",
                     "pipelines/gol", "--", PY, "-c", "pass", expect=2)
    assert "--cwd" in one_error_line(result)
    assert snapshot(lake.root) == before  # no run left behind


def test_run_help_documents_the_variables_and_the_directory(run_cli, lake: Lake) -> None:
    text = run_cli("run", "--help").stdout
    for name in COMMAND_ENV:
        assert name in text, name
    assert "lake root" in text and "--cwd" in text
