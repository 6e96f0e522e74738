"""Content digests: sha256 of files and directories, the spec hash, and the digest cache.

Files are hashed with ``hashlib.file_digest`` (C loop, GIL released), in parallel across
files on threads. Directories are hashed as in-toto's dirHash1 so coreutils can re-check
them. The cache lets unchanged files be re-verified at stat speed; it keys on device,
inode, size, mtime_ns and ctime_ns (ctime because tools that restore mtimes would fool a
cache keyed on mtime alone) and is never consulted when a caller asks for a fresh hash,
which the promotion gate always does.
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from kfm_prov.errors import InputError

PREFIX = "sha256:"
_PREFIXED = re.compile(r"^sha256:[0-9a-f]{64}$")
_BARE = re.compile(r"^[0-9a-fA-F]{64}$")
_SMALL_FILE = 1 << 20  # below this, one read() beats file_digest's buffer loop
_PROGRESS_BYTES = 256 << 20


def normalize_digest(value: object, *, file: str | None = None, field: str | None = None) -> str:
    """``sha256:<64 lowercase hex>`` from either that form or a bare 64-hex digest."""
    if isinstance(value, str):
        if _PREFIXED.match(value):
            return value
        if _BARE.match(value):
            return PREFIX + value.lower()
    raise InputError(f"digest must be 'sha256:<64 hex>' or 64 hex characters, got {value!r:.80}",
                     file=file, field=field)


def hex_of(digest: str) -> str:
    """The 64 hex characters of a normalised digest."""
    return digest[len(PREFIX):]


def sha256_bytes(data: bytes) -> str:
    return PREFIX + hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    """Digest of one file, streamed; small files in one read."""
    with open(path, "rb") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < _SMALL_FILE:
            return PREFIX + hashlib.sha256(handle.read()).hexdigest()
        return PREFIX + hashlib.file_digest(handle, "sha256").hexdigest()


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def hash_files(paths: Sequence[Path], *, workers: int | None = None,
               progress: bool | None = None) -> list[str]:
    """Digests of ``paths`` in order, hashed in parallel; a progress bar on a terminal."""
    if not paths:
        return []
    workers = workers or default_workers()
    show = _want_progress(paths) if progress is None else progress
    if show:
        return _hash_with_progress(paths, workers)
    if workers == 1 or len(paths) == 1:
        return [sha256_file(p) for p in paths]
    # One task per worker over a strided share: a future per file costs more than
    # hashing a small file.
    workers = min(workers, len(paths))
    results: list[str] = [""] * len(paths)

    def share(offset: int) -> None:
        for index in range(offset, len(paths), workers):
            results[index] = sha256_file(paths[index])

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(share, k) for k in range(workers)]:
            future.result()
    return results


def _want_progress(paths: Sequence[Path]) -> bool:
    if not sys.stderr.isatty():
        return False
    total = 0
    for path in paths:
        total += path.stat().st_size
        if total >= _PROGRESS_BYTES:
            return True
    return False


def _hash_with_progress(paths: Sequence[Path], workers: int) -> list[str]:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    sizes = [p.stat().st_size for p in paths]
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), transient=True) as bar:
        task = bar.add_task("hashing", total=sum(sizes))

        def one(item: tuple[Path, int]) -> str:
            digest = sha256_file(item[0])
            bar.advance(task, item[1])
            return digest

        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(one, zip(paths, sizes, strict=True)))


def dir_hash1(directory: Path) -> str:
    """in-toto dirHash1: sha256 of the sha256sum listing of every file, sorted bytewise.

    Equal to ``find . -type f | cut -c3- | LC_ALL=C sort | xargs -r sha256sum | sha256sum``.
    """
    rels = sorted(
        (p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()
         and not p.is_symlink()),
        key=lambda s: s.encode("utf-8"),
    )
    digests = hash_files([directory / r for r in rels])
    listing = "".join(f"{hex_of(d)}  {r}\n" for d, r in zip(digests, rels, strict=True))
    return sha256_bytes(listing.encode("utf-8"))


def spec_hash(spec: Any) -> str:
    """sha256 of the RFC 8785 canonical JSON of a pipeline spec."""
    import rfc8785

    try:
        return sha256_bytes(rfc8785.dumps(spec))
    except (rfc8785.CanonicalizationError, TypeError, ValueError) as exc:
        raise InputError(f"spec is not canonicalisable JSON: {exc}", field="spec") from None


StatKey = tuple[int, int, int, int, int]


def stat_key(st: os.stat_result) -> StatKey:
    return (st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


class DigestCache:
    """Root-relative path → (stat key, digest), in SQLite under the cache directory.

    Disposable: deleting it only costs a re-hash. Safe for concurrent processes (WAL).
    """

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path

    def _connect(self) -> sqlite3.Connection:
        self.db_path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.db_path, timeout=30)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute(
            "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, dev INT, ino INT,"
            " size INT, mtime_ns INT, ctime_ns INT, digest TEXT NOT NULL) WITHOUT ROWID"
        )
        return conn

    def _lookup(self, conn: sqlite3.Connection, rels: Sequence[str]) -> dict[str, tuple]:
        found: dict[str, tuple] = {}
        for start in range(0, len(rels), 900):
            chunk = rels[start:start + 900]
            marks = ",".join("?" * len(chunk))
            for row in conn.execute(
                f"SELECT path, dev, ino, size, mtime_ns, ctime_ns, digest FROM digests"
                f" WHERE path IN ({marks})", chunk,
            ):
                found[row[0]] = row[1:]
        return found

    def digests(self, items: Sequence[tuple[str, Path]], *, fresh: bool = False,
                workers: int | None = None) -> list[str]:
        """Digests of ``(rel, absolute)`` pairs; re-hashes only what changed unless ``fresh``.

        ``fresh`` neither reads nor writes the cache: the gate's hashes must not depend on
        it and a check must write nothing.
        """
        if fresh:
            return hash_files([p for _, p in items], workers=workers)
        rels = [r for r, _ in items]
        with self._connect() as conn:
            cached = self._lookup(conn, rels)
            keys: list[StatKey] = []
            results: list[str | None] = []
            stale: list[int] = []
            for index, (rel, path) in enumerate(items):
                key = stat_key(os.stat(path))
                keys.append(key)
                row = cached.get(rel)
                if row is not None and tuple(row[:5]) == key:
                    results.append(row[5])
                else:
                    results.append(None)
                    stale.append(index)
            if stale:
                fresh_digests = hash_files([items[i][1] for i in stale], workers=workers)
                rows = []
                for index, digest in zip(stale, fresh_digests, strict=True):
                    results[index] = digest
                    rows.append((items[index][0], *keys[index], digest))
                conn.executemany("INSERT OR REPLACE INTO digests VALUES (?,?,?,?,?,?,?)", rows)
        conn.close()
        return [r for r in results if r is not None]

    def forget(self, rels: Iterable[str]) -> None:
        with self._connect() as conn:
            conn.executemany("DELETE FROM digests WHERE path = ?", [(r,) for r in rels])
        conn.close()
