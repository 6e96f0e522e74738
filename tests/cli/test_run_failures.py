"""A failed ``kfm-prov run`` says why at the terminal; ``show`` and ``trace`` never dress a
failed run as passed."""

from __future__ import annotations

import json
import sys

from kfm_prov.lake import Lake
from tests.conftest import CODE, CODE_ARGS, add_raw

PY = sys.executable


def run_args(*extra: str) -> list[str]:
    return ["run", "--family", "glo", "--pipeline", "pipelines/glo", *CODE_ARGS, *extra]


def why(result, lake: Lake) -> str:
    """The run's closing line on stderr: ``kfm-prov: run ID STATUS[: REASON] (DIR)``."""
    run = lake.runs()[-1]
    lines = [line for line in result.stderr.splitlines()
             if line.startswith(f"kfm-prov: run {run.run_id} ")]
    assert len(lines) == 1, result.stderr
    assert lines[0].endswith(f" ({run.run_dir})")
    return lines[0]


def test_a_command_not_found_says_so(run_cli, lake: Lake) -> None:
    result = run_cli(*run_args("--", "no-such-command-kfm", "--flag"), expect=127)
    assert why(result, lake).endswith("failed: command not found: no-such-command-kfm"
                                      f" ({lake.runs()[-1].run_dir})")
    assert "Traceback" not in result.stderr


def test_a_command_that_cannot_be_executed_says_so(run_cli, lake: Lake) -> None:
    script = lake.root / "not-executable.sh"
    script.write_text("echo hi\n")
    script.chmod(0o644)
    result = run_cli(*run_args("--", "./not-executable.sh"), expect=126)
    assert ": command not executable: ./not-executable.sh (" in why(result, lake)


def test_a_declared_output_never_written_is_named(run_cli, lake: Lake) -> None:
    result = run_cli(*run_args("-o", "promised.csv:product", "-o", "made.csv", "--", PY, "-c",
                               "import os; open(os.environ['KFM_ARTIFACTS_DIR']"
                               " + '/made.csv', 'w').write('x')"), expect=1)
    line = why(result, lake)
    assert ": declared output(s) never written: promised.csv (" in line
    assert "made.csv" not in line


def test_an_exit_code_is_named(run_cli, lake: Lake) -> None:
    result = run_cli(*run_args("--", PY, "-c", "import sys; sys.exit(3)"), expect=3)
    assert ": the command exited with 3 (" in why(result, lake)


def test_a_success_says_nothing_more(run_cli, lake: Lake) -> None:
    result = run_cli(*run_args("--", PY, "-c", "pass"))
    assert why(result, lake).startswith(f"kfm-prov: run {lake.runs()[-1].run_id} success (")
    data = json.loads(run_cli(*run_args("--json", "--", PY, "-c", "pass")).stdout)
    assert data["reason"] is None and data["exit_code"] == 0


def test_show_and_trace_of_a_failed_run(run_cli, lake: Lake) -> None:
    src = add_raw(lake, "data/raw/glo/a.csv", "a\n")
    run_cli(*run_args("-i", src, "--param", "year=2020", "--param", "mode=fast", "--", PY,
                      "-c", "import sys; sys.exit(3)"), expect=3)
    run_id = lake.runs()[-1].run_id
    shown = run_cli("show", run_id).stdout
    params = next(line for line in shown.splitlines() if line.startswith("params "))
    assert json.loads(params.removeprefix("params ")) == {"year": 2020, "mode": "fast"}
    assert "status    failed  validation n/a (run failed)  exit 3" in shown
    assert "validation pass" not in shown
    traced = run_cli("trace", run_id, expect=1).stdout
    assert "failed · validation n/a (run failed)" in traced
    assert "validation pass" not in traced
    # a run captured by the library has no exit code: none is shown, never "exit None"
    with lake.capture("glo", "pipelines/glo/lib", **CODE) as run:
        run.use(src)
    shown = run_cli("show", run.run_id).stdout
    assert "exit None" not in shown and "None" not in shown
