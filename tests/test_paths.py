from __future__ import annotations

import os
from pathlib import Path

import pytest

from kfm_prov.core.paths import check_relative, resolve_inside, to_relative
from kfm_prov.errors import InputError


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "data/../../x", "a\nb", "a\x00b",
                                 "", ".", "data\\raw\\x"])
def test_unsafe_relative_paths_are_refused(bad: str) -> None:
    with pytest.raises(InputError) as info:
        check_relative(bad, file="run_manifest.json", field="/inputs/0/path")
    assert info.value.file == "run_manifest.json"
    assert info.value.field == "/inputs/0/path"


def test_relative_paths_are_normalised() -> None:
    assert check_relative("data/./raw//x.csv") == "data/raw/x.csv"


def test_symlink_out_of_the_root_is_refused(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    (root / "data").mkdir(parents=True)
    outside = tmp_path / "secret.txt"
    outside.write_text("x")
    os.symlink(outside, root / "data" / "link.txt")
    with pytest.raises(InputError, match="leaves the lake root"):
        resolve_inside(root, "data/link.txt")
    os.symlink(tmp_path, root / "data" / "up")
    with pytest.raises(InputError, match="leaves the lake root"):
        resolve_inside(root, "data/up/secret.txt")


def test_user_paths_become_root_relative(tmp_path: Path) -> None:
    root = tmp_path / "lake"
    (root / "data" / "raw").mkdir(parents=True)
    assert to_relative(root, "raw/f.csv", base=root / "data") == "data/raw/f.csv"
    assert to_relative(root, root / "data" / "x") == "data/x"
    with pytest.raises(InputError, match="outside the lake root"):
        to_relative(root, tmp_path / "elsewhere.csv")
