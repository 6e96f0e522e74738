"""Real lakes in tmp_path, the real CLI, and a way to prove that nothing changed."""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from kfm_prov.cli.main import cli
from kfm_prov.lake import Lake

CliInvoker = Callable[..., Result]


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    return Lake.init(tmp_path / "lake")


@pytest.fixture
def run_cli(lake: Lake, monkeypatch: pytest.MonkeyPatch) -> CliInvoker:
    """Invoke ``kfm-prov`` inside the lake: cwd is the root, as a user would stand."""
    monkeypatch.chdir(lake.root)
    monkeypatch.delenv("KFM_PROV_ROOT", raising=False)

    def invoke(*args: str, expect: int | None = 0, input: str | None = None) -> Result:
        result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=False)
        if expect is not None:
            assert result.exit_code == expect, (
                f"exit {result.exit_code}, expected {expect}\nstdout: {result.stdout}\n"
                f"stderr: {result.stderr}")
        return result

    return invoke


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(data, str):
        path.write_text(data, encoding="utf-8")
    else:
        path.write_bytes(data)
    return path


def snapshot(root: Path) -> dict[str, str]:
    """Every file and symlink under ``root`` with its digest: equal snapshots, same lake."""
    state: dict[str, str] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            rel = path.relative_to(root).as_posix()
            if path.is_symlink():
                state[rel] = "link:" + os.readlink(path)
            elif path.is_file():
                state[rel] = hashlib.sha256(path.read_bytes()).hexdigest()
            else:
                state[rel] = "dir"
    return state


def one_error_line(result: Result) -> str:
    """The error contract: exactly one line on stderr, starting with 'kfm-prov: error:'."""
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("kfm-prov: error: "), lines[0]
    assert "Traceback" not in result.stderr
    return lines[0]
