"""``read_bounded``: a file's bytes, limit + 1 of them when larger, None when unreadable."""

from __future__ import annotations

from pathlib import Path

import pytest

from kfm_prov.store.receipts import read_bounded


@pytest.mark.parametrize("size", [0, 1, 99, 100, 70_000])
def test_a_file_within_the_limit_is_read_whole(tmp_path: Path, size: int) -> None:
    path = tmp_path / "f"
    path.write_bytes(bytes(range(256)) * (size // 256) + b"x" * (size % 256))
    assert read_bounded(path, max(size, 100)) == path.read_bytes()
    assert read_bounded(str(path), max(size, 100)) == path.read_bytes()


def test_a_larger_file_yields_one_byte_over_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"a" * 200_000)
    assert read_bounded(path, 100) == b"a" * 101
    assert read_bounded(path, 150_000) == b"a" * 150_001


def test_missing_files_and_directories_are_unreadable(tmp_path: Path) -> None:
    assert read_bounded(tmp_path / "nothing", 100) is None
    assert read_bounded(tmp_path, 100) is None
