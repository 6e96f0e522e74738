from __future__ import annotations

import os
from pathlib import Path

import pytest

from kfm_prov.core.paths import check_relative, resolve_inside, to_relative
from kfm_prov.errors import InputError


@pytest.mark.parametrize("bad", ["/etc/passwd", "../x", "data/../../x", "a\nb", "a\x00b",
                                 "", ".", "data\\raw\\x",
                                 "\ud800", "data/\udfff.csv"])
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


# -- the fast paths agree with the rules (issue 17: run.output checks one name per output) --

from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from kfm_prov.core.paths import (  # noqa: E402
    _PLAIN,
    _checked_relative,
    unsafe_paths,
    unsafe_reason,
)

PATH_TEXT = st.text(st.sampled_from("aZ09._-/\\ é\n\x00\x1f\x85\udcff"), max_size=12) | \
    st.lists(st.text("ab.-_", min_size=0, max_size=300), max_size=3).map("/".join)


@given(PATH_TEXT)
def test_a_plain_path_passes_every_rule_unchanged(text: str) -> None:
    if _PLAIN.fullmatch(text):
        assert _checked_relative(text) == text
        assert check_relative(text) == text
    else:
        try:
            expected: str | None = _checked_relative(text)
        except InputError:
            expected = None
        try:
            got: str | None = check_relative(text)
        except InputError:
            got = None
        assert got == expected


@given(st.lists(PATH_TEXT, max_size=6))
def test_unsafe_paths_are_those_unsafe_reason_refuses(rels: list[str]) -> None:
    assert unsafe_paths(rels) == sorted(r for r in rels if unsafe_reason(r) is not None)


def test_a_long_plain_segment_is_still_refused() -> None:
    with pytest.raises(InputError, match="too long"):
        check_relative("a" * 256)
    assert check_relative("a" * 255) == "a" * 255
