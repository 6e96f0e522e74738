from __future__ import annotations

import hashlib
import os
import subprocess
from pathlib import Path

import pytest

from kfm_prov.errors import InputError
from kfm_prov.store.digests import (
    DigestCache,
    dir_hash1,
    hash_files,
    normalize_digest,
    sha256_file,
    spec_hash,
)
from tests.conftest import write

HEX = "ab" * 32


def test_digest_forms() -> None:
    assert normalize_digest("sha256:" + HEX) == "sha256:" + HEX
    assert normalize_digest(HEX.upper()) == "sha256:" + HEX
    for bad in ("sha256:" + HEX.upper(), "md5:" + HEX, HEX[:-1], "sha256:xyz", 42, None):
        with pytest.raises(InputError) as info:
            normalize_digest(bad, file="m.json", field="/outputs/0/digest")
        assert info.value.field == "/outputs/0/digest"


def test_file_digest_small_and_streamed(tmp_path: Path) -> None:
    small = write(tmp_path / "s", b"hello")
    big = write(tmp_path / "b", os.urandom(3 << 20))
    for path in (small, big):
        assert sha256_file(path) == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_parallel_hashing_keeps_order(tmp_path: Path) -> None:
    paths = [write(tmp_path / f"f{i}", f"content {i}") for i in range(50)]
    assert hash_files(paths, workers=4) == [sha256_file(p) for p in paths]
    assert hash_files([]) == []


def test_dir_hash1_matches_coreutils(tmp_path: Path) -> None:
    base = tmp_path / "d"
    write(base / "b.txt", "b")
    write(base / "a" / "z.txt", "z")
    write(base / "A.txt", "upper sorts first in C locale")
    shell = ("find . -type f | cut -c3- | LC_ALL=C sort | xargs -r sha256sum | sha256sum")
    out = subprocess.run(["sh", "-c", shell], cwd=base, capture_output=True, text=True,
                         check=True).stdout.split()[0]
    assert dir_hash1(base) == "sha256:" + out


def test_spec_hash_is_canonical() -> None:
    one = spec_hash({"b": [1, 2.0, "x"], "a": {"z": True, "y": None}})
    two = spec_hash({"a": {"y": None, "z": True}, "b": [1, 2.0, "x"]})
    assert one == two
    # RFC 8785 output for this object is fixed: pin it so a library change cannot drift.
    assert spec_hash({"a": 1}) == "sha256:" + hashlib.sha256(b'{"a":1}').hexdigest()
    with pytest.raises(InputError):
        spec_hash({"x": float("nan")})


def test_cache_serves_unchanged_files_and_notices_changes(tmp_path: Path) -> None:
    cache = DigestCache(tmp_path / "cache" / "d.sqlite")
    path = write(tmp_path / "f.txt", "one")
    items = [("f.txt", path)]
    first = cache.digests(items)
    assert first == [sha256_file(path)]
    # Poison the cached digest: a hit returns it, proving the cache was used.
    import sqlite3
    with sqlite3.connect(cache.db_path) as conn:
        conn.execute("UPDATE digests SET digest = ?", ("sha256:" + HEX,))
    conn.close()
    assert cache.digests(items) == ["sha256:" + HEX]
    assert cache.digests(items, fresh=True) == first  # fresh never trusts the cache
    # Same size, same mtime restored, different bytes: ctime still changes.
    st = path.stat()
    path.write_text("two")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert cache.digests(items) == [sha256_file(path)]


def test_fresh_hash_does_not_create_the_cache(tmp_path: Path) -> None:
    cache = DigestCache(tmp_path / "cache" / "d.sqlite")
    path = write(tmp_path / "f.txt", "x")
    cache.digests([("f.txt", path)], fresh=True)
    assert not cache.db_path.exists()


@pytest.mark.parametrize("size", [0, 1, 4096, 65535, 65536, 65537, 131072, 131073,
                                  (1 << 20) + 7])
def test_file_digest_at_every_read_boundary(tmp_path: Path, size: int) -> None:
    """A small file is read whole in one or two reads, a larger one streamed: same digest."""
    path = write(tmp_path / "f", os.urandom(size))
    assert sha256_file(path) == "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_large_files_on_workers_and_small_ones_here_keep_order(tmp_path: Path) -> None:
    """Only files of 32 KiB and more go to the pool (small ones hash faster on one thread);
    a mix comes back in the order asked, with and without the sizes given."""
    sizes = [10, 2 << 20, 100, 40 << 10, 3 << 20, 0, 5]
    paths = [write(tmp_path / f"m{i}", os.urandom(size)) for i, size in enumerate(sizes)]
    expected = ["sha256:" + hashlib.sha256(p.read_bytes()).hexdigest() for p in paths]
    assert hash_files(paths, workers=2) == expected
    assert hash_files(paths, workers=2, sizes=sizes) == expected
    assert hash_files(paths, workers=1) == expected


def test_a_kept_connection_serves_threads_and_reopens_after_close(tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    paths = [write(tmp_path / f"t{i}", f"{i}") for i in range(8)]
    with DigestCache(tmp_path / "cache" / "d.sqlite", keep_open=True) as cache:
        with ThreadPoolExecutor(4) as pool:  # threads other than the one that opened it
            got = list(pool.map(lambda p: cache.digests([(p.name, p)])[0], paths))
        assert got == [sha256_file(p) for p in paths]
        cache.close()
        assert cache.digests([(paths[0].name, paths[0])]) == [got[0]]  # a new connection
        stats = cache.digests_and_stats([(paths[1].name, paths[1])])
        assert stats[0][0] == got[1] and stats[0][1][2] == 1  # the size it checked
