"""``raw add`` hashes its files while the CLI imports (issue 17: hashing as a whole process).

The early digest is used only for bytes that did not change: same identity and times
before the hash, after it and when the command asks.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path

from kfm_prov.cli.entry import _gated_artifacts, _raw_add_paths, _run_inputs
from kfm_prov.core import prehash

SIZE = 17 << 20  # above prehash's threshold


def _big(path: Path, fill: bytes = b"k") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(fill * SIZE)
    return path


def _reset() -> None:
    prehash._thread = None
    prehash._results.clear()
    prehash._unwanted.clear()


def test_an_unchanged_file_gets_its_early_digest(tmp_path: Path) -> None:
    big = _big(tmp_path / "big.bin")
    _reset()
    prehash.start([str(big), "--license", str(tmp_path / "missing")])
    expected = "sha256:" + hashlib.sha256(big.read_bytes()).hexdigest()
    assert prehash.take(big) == expected
    assert prehash.take(big) is None  # handed out once


def test_a_file_changed_after_the_early_hash_is_hashed_again(tmp_path: Path) -> None:
    from kfm_prov.store.digests import hash_files

    big = _big(tmp_path / "big.bin")
    _reset()
    prehash.start([str(big)])
    assert prehash._thread is not None
    prehash._thread.join()
    with open(big, "r+b") as handle:  # same size, other bytes, later times
        handle.write(b"X")
    os.utime(big, ns=(1, 1))
    expected = "sha256:" + hashlib.sha256(big.read_bytes()).hexdigest()
    assert hash_files([big]) == [expected]
    _reset()


def test_small_files_and_symlinks_are_left_to_the_command(tmp_path: Path) -> None:
    small = tmp_path / "small.csv"
    small.write_text("id\n1\n")
    link = tmp_path / "link.bin"
    link.symlink_to(_big(tmp_path / "big.bin"))
    _reset()
    prehash.start([str(small), str(link)])
    assert not prehash.pending()


def test_only_raw_add_arguments_are_candidates() -> None:
    assert _raw_add_paths(["--root", "x", "raw", "add", "a.bin", "--license", "MIT"]) == [
        "a.bin", "--license", "MIT"]
    assert _raw_add_paths(["check", "raw", "x"]) == []
    assert _raw_add_paths(["trace", "raw"]) == []


def test_raw_add_as_a_process_records_the_true_digest(tmp_path: Path) -> None:
    from kfm_prov.lake import Lake

    lake = Lake.init(tmp_path / "lake")
    big = _big(lake.root / "data/raw/big/big.bin", b"z")
    done = subprocess.run([sys.executable, "-m", "kfm_prov.cli", "raw", "add",
                           "data/raw/big/big.bin", "--license", "CC-BY-4.0",
                           "--attribution", "X"], cwd=lake.root, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    checksums = (big.parent / "checksums.sha256").read_text()
    assert hashlib.sha256(big.read_bytes()).hexdigest() in checksums


def test_the_switch_interval_is_lowered_while_hashing_and_restored(tmp_path: Path) -> None:
    """The hash thread must not wait 5 ms for the GIL after every chunk while the main
    thread imports; once done, the interpreter is as it was."""
    big = _big(tmp_path / "big.bin")
    _reset()
    before = sys.getswitchinterval()
    try:
        prehash.start([str(big)])
        assert sys.getswitchinterval() <= 1e-4 or prehash._thread is None \
            or not prehash._thread.is_alive()
        assert prehash.take(big) is not None
        assert sys.getswitchinterval() == before
    finally:
        sys.setswitchinterval(before)


def test_run_inputs_are_candidates_under_the_root() -> None:
    assert _run_inputs(["--root", "lake", "run", "-f", "x", "-i", "data/raw/a.bin:auxiliary",
                        "--input=data/raw/b.bin", "-o", "o.csv", "--", "cp", "-i", "z"]) == [
        "lake/data/raw/a.bin", "lake/data/raw/b.bin"]
    assert _run_inputs(["check", "-i", "x"]) == []


def test_check_and_promote_hash_the_runs_files_early(tmp_path: Path) -> None:
    run_id = "01M8TXG2TYKAZ78BN0TQNZ815K"
    artifacts = tmp_path / "data/work/runs/fam" / run_id / "artifacts"
    (artifacts / "sub").mkdir(parents=True)
    (artifacts / "a.bin").write_bytes(b"a")
    (artifacts / "sub/b.bin").write_bytes(b"b")
    root = str(tmp_path)
    found = sorted(_gated_artifacts(["--root", root, "check", "--json", run_id]))
    assert found == [str(artifacts / "a.bin"), str(artifacts / "sub/b.bin")]
    assert _gated_artifacts([f"--root={root}", "promote", run_id, "--version", "v9"]) != []
    assert _gated_artifacts(["--root", root, "check", run_id[:10]]) == []  # a prefix: no guess
    assert _gated_artifacts(["--root", root, "trace", run_id]) == []
    assert _gated_artifacts(["--root", str(tmp_path / "nowhere"), "check", run_id]) == []


def test_a_discarded_file_is_not_handed_out(tmp_path: Path) -> None:
    """The digest cache knew it: the early hash stops and nobody takes a digest of it."""
    big = _big(tmp_path / "big.bin")
    _reset()
    prehash.start([str(big)])
    prehash.discard([big])
    assert prehash.take(big) is None


def test_run_as_a_process_records_the_true_digest_of_a_large_input(tmp_path: Path) -> None:
    import json

    from kfm_prov.lake import Lake

    lake = Lake.init(tmp_path / "lake")
    big = _big(lake.root / "data/raw/big/big.bin", b"r")
    lake.raw_add([big], license="CC-BY-4.0", attribution="X", sensitivity="public")
    done = subprocess.run([sys.executable, "-m", "kfm_prov.cli", "--root", str(lake.root),
                           "run", "--json", "-f", "big", "-p", "pipelines/p", "-i",
                           "data/raw/big/big.bin", "--", "true"], capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    run_dir = json.loads(done.stdout)["run_dir"]
    manifest = json.loads((lake.root / run_dir / "run_manifest.json").read_text())
    assert manifest["inputs"][0]["digest"] == "sha256:" + hashlib.sha256(
        big.read_bytes()).hexdigest()
