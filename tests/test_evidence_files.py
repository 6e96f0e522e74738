"""``evidence_files`` lists a run's logs as ``walk_tree`` does, whatever ``logs/`` holds."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from kfm_prov.config import load_config
from kfm_prov.core.paths import walk_tree
from kfm_prov.lake import Lake
from kfm_prov.store.evidence import evidence_files


def _layout(logs: Path, kind: str) -> None:
    outside = logs.parent.parent / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.log").write_text("x")
    if kind == "symlinked-logs":
        os.symlink(outside, logs)
        return
    if kind == "logs-is-a-file":
        logs.write_text("x")
        return
    if kind == "no-logs":
        return
    logs.mkdir()
    (logs / "b.log").write_text("b")
    (logs / "a.jsonl").write_text("a")
    if kind in ("nested", "everything"):
        (logs / "sub").mkdir()
        (logs / "sub" / "c.log").write_text("c")
    if kind in ("links", "everything"):
        os.symlink(outside / "secret.log", logs / "link.log")
        os.symlink(outside, logs / "linked-dir")
    if kind == "everything":
        os.mkfifo(logs / "fifo")


@pytest.mark.parametrize("kind", ["flat", "nested", "links", "everything", "no-logs",
                                  "logs-is-a-file", "symlinked-logs"])
def test_logs_listed_as_the_walk_lists_them(tmp_path: Path, kind: str) -> None:
    Lake.init(tmp_path / "lake")
    config = load_config(tmp_path / "lake")
    run_dir = "data/work/runs/fam/RUN"
    absolute = tmp_path / "lake" / run_dir
    absolute.mkdir(parents=True)
    (absolute / "run_record.json").write_text("{}")
    _layout(absolute / "logs", kind)
    logs = absolute / "logs"
    walked = sorted(walk_tree(logs, "logs")[0]) if logs.is_dir() else []
    assert evidence_files(config, run_dir) == [f"{run_dir}/run_record.json",
                                               *(f"{run_dir}/{rel}" for rel in walked)]
    if kind == "everything":
        assert f"{run_dir}/logs/sub/c.log" in evidence_files(config, run_dir)
