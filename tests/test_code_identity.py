"""Code identity (issue 12 §4): "committed" means the code that ran is in the commit.

Real git repositories in tmp_path, the real CLI: an untracked script inside the repository,
a script outside ``--git-dir``, a commit the repository does not have, a tracked file
modified before the run, and a clean committed script that passes.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from kfm_prov.lake import Lake
from tests.conftest import add_raw, write

PY = sys.executable
SCRIPT = ("import os, sys\n"
          "d = os.environ['KFM_ARTIFACTS_DIR']\n"
          "open(os.path.join(d, 'out.csv'), 'w').write(open(sys.argv[1]).read().upper())\n")
REMOTE = "https://octocat:ghp_s3cretTokenValue1234567890abcdefABCD@example.org/org/pipes.git"


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@e",
                           "-c", "commit.gpgsign=false", *args], check=True,
                          capture_output=True, text=True).stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A pipeline repository with one committed script and a remote holding a token."""
    repo = tmp_path / "pipes"
    repo.mkdir()
    git(repo, "init", "-q")
    git(repo, "remote", "add", "origin", REMOTE)
    write(repo / "clean.py", SCRIPT)
    git(repo, "add", "clean.py")
    git(repo, "commit", "-q", "-m", "pipeline")
    return repo


def run_script(run_cli, lake: Lake, repo: Path, script: Path, *extra: str,
               expect: int = 0):
    src = "data/raw/glo/a.csv"
    if not (lake.root / src).exists():
        add_raw(lake, src, "id\n1\n")
    result = run_cli("run", "-f", "glo", "-p", "pipelines/glo", "--git-dir", str(repo),
                     *extra, "-i", src, "-o", "out.csv:product", "--", PY, str(script), src,
                     expect=expect)
    return result, lake.runs()[-1]


def check_codes(run_cli, run_id: str) -> set[str]:
    result = run_cli("check", run_id, "--json", expect=None)
    data = json.loads(result.stdout)
    return {f["code"] for c in data["checks"] for f in c.get("findings", [])}


def record_of(lake: Lake, run) -> dict:
    return json.loads((lake.root / run.run_dir / "run_record.json").read_text())


def test_clean_committed_script_passes_and_records_the_repository(run_cli, lake: Lake,
                                                                  repo: Path) -> None:
    result, run = run_script(run_cli, lake, repo, repo / "clean.py")
    assert "warning" not in result.stderr
    record = record_of(lake, run)
    assert record["schema_version"] == "kfm.run_record.v2"
    assert record["git_commit"] == git(repo, "rev-parse", "HEAD")
    code = record["code"]
    assert code["repository"] == "https://example.org/org/pipes.git"  # no credentials
    assert "ghp_" not in json.dumps(record)
    assert code["entry"] == "clean.py"
    assert code["entry_blob"] == git(repo, "hash-object", "clean.py")
    assert code["problems"] == []
    assert check_codes(run_cli, run.run_id) == set()
    run_cli("promote", run.run_id)


def test_untracked_script_inside_the_repository_is_refused(run_cli, lake: Lake,
                                                           repo: Path) -> None:
    write(repo / "new.py", SCRIPT)  # git status --untracked-files=no does not see it
    result, run = run_script(run_cli, lake, repo, repo / "new.py")
    assert "warning" in result.stderr and "untracked" in result.stderr
    assert record_of(lake, run)["code"]["problems"] == ["untracked-code"]
    assert "untracked-code" in check_codes(run_cli, run.run_id)
    run_cli("promote", run.run_id, expect=1)
    shown = run_cli("show", run.run_id).stdout
    assert "untracked-code" in shown
    assert "untracked-code" in run_cli("runs").stdout


def test_script_outside_git_dir_is_refused(run_cli, lake: Lake, repo: Path,
                                           tmp_path: Path) -> None:
    outside = write(tmp_path / "elsewhere" / "clean.py", SCRIPT)
    result, run = run_script(run_cli, lake, repo, outside)
    assert "outside" in result.stderr
    assert "untracked-code" in check_codes(run_cli, run.run_id)


@pytest.mark.parametrize("commit", ["0000000", "f" * 40])
def test_a_commit_the_repository_does_not_have_is_refused(run_cli, lake: Lake, repo: Path,
                                                          commit: str) -> None:
    result, run = run_script(run_cli, lake, repo, repo / "clean.py", "--commit", commit)
    assert "unknown-commit" in result.stderr
    assert "unknown-commit" in check_codes(run_cli, run.run_id)
    run_cli("promote", run.run_id, expect=1)


def test_modified_tracked_script_is_dirty(run_cli, lake: Lake, repo: Path) -> None:
    write(repo / "clean.py", SCRIPT + "# changed after the commit\n")
    result, run = run_script(run_cli, lake, repo, repo / "clean.py")
    assert "dirty" in result.stderr
    assert record_of(lake, run)["git_commit"].endswith("-dirty")
    assert "dirty-commit" in check_codes(run_cli, run.run_id)
    table = run_cli("runs").stdout
    assert "-dirty" in table


def test_modified_script_under_an_explicit_commit_is_dirty(run_cli, lake: Lake,
                                                           repo: Path) -> None:
    """``--commit`` names the code; bytes that differ from it are not that code."""
    head = git(repo, "rev-parse", "HEAD")
    write(repo / "clean.py", SCRIPT + "# changed\n")
    _, run = run_script(run_cli, lake, repo, repo / "clean.py", "--commit", head)
    assert "dirty-commit" in check_codes(run_cli, run.run_id)


def test_the_gate_rechecks_the_repository(run_cli, lake: Lake, repo: Path) -> None:
    """A commit found at capture but gone from the repository later is refused."""
    _, run = run_script(run_cli, lake, repo, repo / "clean.py")
    assert check_codes(run_cli, run.run_id) == set()
    git(repo, "commit", "-q", "--amend", "-m", "rewritten")
    git(repo, "reflog", "expire", "--expire=now", "--all")
    git(repo, "gc", "-q", "--prune=now")
    assert "unknown-commit" in check_codes(run_cli, run.run_id)


def test_python_capture_checks_the_calling_module(lake: Lake, repo: Path,
                                                  tmp_path: Path) -> None:
    """The module that calls ``lake.capture`` is the code; untracked, it is refused."""
    add_raw(lake, "data/raw/glo/a.csv", "id\n1\n")
    body = (f"from kfm_prov.lake import Lake\n"
            f"lake = Lake.open({str(lake.root)!r})\n"
            f"with lake.capture('glo', 'pipelines/py', git_dir={str(repo)!r}) as run:\n"
            f"    run.use('data/raw/glo/a.csv')\n"
            f"    run.output('p.csv', role='product').write_text('p')\n"
            f"print(run.run_id)\n")
    write(repo / "tracked.py", body)
    git(repo, "add", "tracked.py")
    git(repo, "commit", "-q", "-m", "python pipeline")
    write(repo / "untracked.py", body)
    ids = {}
    for name in ("tracked.py", "untracked.py"):
        done = subprocess.run([PY, str(repo / name)], capture_output=True, text=True,
                              check=True, cwd=tmp_path)
        ids[name] = done.stdout.strip()
        assert ("untracked" in done.stderr) == (name == "untracked.py"), done.stderr
    assert lake.check(ids["tracked.py"]).ok
    report = lake.check(ids["untracked.py"])
    assert "untracked-code" in {f.code for f in report.findings}


def test_v1_run_records_stay_readable() -> None:
    """Receipts written before the code field keep validating against their own schema."""
    from kfm_prov.core.validation import validate_data
    from kfm_prov.store.receipts import RunRecord

    v1 = {"schema_version": "kfm.run_record.v1", "run_id": "01HK15B7C0X8C2V61ZN8VGMM21",
          "dataset_family": "glo", "pipeline_id": "p", "git_commit": "0" * 40,
          "started_at": "2024-01-01T00:00:00Z", "ended_at": "2024-01-01T00:00:01Z",
          "status": "success", "runner": {"type": "local"}}
    assert validate_data("run_record", v1, file="r") == []
    assert RunRecord.from_dict(v1).code is None
    bad = {**v1, "schema_version": "kfm.run_record.v9"}
    assert [f.code for f in validate_data("run_record", bad, file="r")] == ["schema-version"]
    v2 = {**v1, "schema_version": "kfm.run_record.v2",
          "code": {"repository": None, "worktree": "/x", "entry": None, "problems": ["nope"]}}
    assert validate_data("run_record", v2, file="r")  # problems are reason codes only


def test_credentials_are_stripped_from_remote_urls() -> None:
    from kfm_prov.context import strip_credentials

    assert strip_credentials("https://x-access-token:ghp_abc@github.com/o/r.git?t=1#f") == \
        "https://github.com/o/r.git"
    assert strip_credentials("https://TOKEN@gitlab.example.org:8443/o/r") == \
        "https://gitlab.example.org:8443/o/r"
    assert strip_credentials("git@github.com:o/r.git") == "git@github.com:o/r.git"
    assert strip_credentials("u:pw@host:o/r.git") == "host:o/r.git"


def test_the_entry_script_of_a_command(tmp_path: Path) -> None:
    from kfm_prov.context import entry_script

    script = write(tmp_path / "clean.py", SCRIPT)
    data = write(tmp_path / "data.csv", "x")
    assert entry_script([PY, "-u", str(script), str(data)], tmp_path) == script
    assert entry_script(["python", "clean.py"], tmp_path) == script
    assert entry_script([str(script)], tmp_path) == script
    assert entry_script([PY, "-c", "print(1)", str(data)], tmp_path) is None
    assert entry_script(["sh", "-c", "python clean.py"], tmp_path) is None
