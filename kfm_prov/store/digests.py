"""Content digests: sha256 of files and directories, the spec hash, and the digest cache.

Files are hashed with ``hashlib.file_digest`` (C loop, GIL released), in parallel across
files on threads. Directories are hashed as in-toto's dirHash1 so coreutils can re-check
them. The cache lets unchanged files be re-verified at stat speed; it keys on device,
inode, size, mtime_ns and ctime_ns (ctime because tools that restore mtimes would fool a
cache keyed on mtime alone) and is never consulted when a caller asks for a fresh hash,
which the promotion gate always does.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
import sqlite3
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

from kfm_prov.core import prehash
from kfm_prov.errors import InputError
from kfm_prov.store.dbutil import begin_immediate, connect, retry_locked

PREFIX = "sha256:"
_PREFIXED = re.compile(r"^sha256:[0-9a-f]{64}$")
_BARE = re.compile(r"^[0-9a-fA-F]{64}$")
_FIRST_READ = 64 << 10  # one read of this much holds a small file whole
_CHUNK = 1 << 20
_OPEN_FLAGS = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_BINARY", 0)
_POOL_MIN_SIZE = 32 << 10  # smaller files hash faster on one thread than on two
_POOL_MIN_BYTES = 4 << 20
_RANGE_MIN = 128  # files of one directory from which the cache reads them with a range scan
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


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Digest of one file: a small one in one ``read``, others in 1 MiB ``readinto`` chunks.

    Small files (most outputs) cost an ``open``, one or two ``read`` and a ``close``: no
    file object and no ``fstat`` (a third of the cost of a 4 KiB file). Larger ones use
    one buffer, unbuffered reads straight into it and ``update`` on a view: the C hash runs
    with the GIL released on each MiB, and the Python loop turns 1,024 times per GiB
    (``hashlib.file_digest`` reads 256 KiB at a time; this is ~5 % faster here). No mmap:
    a file truncated while mapped kills the process with SIGBUS, while a read merely sees
    the change, which the digest then records.
    """
    fd = os.open(path, _OPEN_FLAGS)
    try:
        first = os.read(fd, _FIRST_READ)
        more = os.read(fd, _FIRST_READ) if first else b""
        if not more:  # a read that returns nothing is the end of the file
            return PREFIX + hashlib.sha256(first).hexdigest()
        digest = hashlib.sha256(first)
        digest.update(more)
        buffer = bytearray(_CHUNK)
        view = memoryview(buffer)
        with open(fd, "rb", buffering=0, closefd=False) as handle:
            while count := handle.readinto(buffer):
                digest.update(view[:count])
        return PREFIX + digest.hexdigest()
    finally:
        os.close(fd)


def default_workers() -> int:
    return max(1, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
               else os.cpu_count() or 1)


def hash_files(paths: Sequence[str | os.PathLike[str]], *, workers: int | None = None,
               progress: bool | None = None, sizes: Sequence[int] | None = None) -> list[str]:
    """Digests of ``paths`` in order; large files in parallel; a progress bar on a terminal.

    ``sizes`` (the files' sizes, when the caller has just stat'ed them) spares a ``stat``
    each. Only files of at least ``_POOL_MIN_SIZE`` go to the worker threads: a small
    file's hash is mostly system calls made holding the GIL, so two threads hashing 4 KiB
    files take twice as long as one (measured: 10,000 files, 190 ms against 85 ms).
    """
    if not paths:
        return []
    if prehash.pending():  # hashed while the CLI imported (core/prehash.py)
        early = [prehash.take(p) for p in paths]
        if any(early):
            rest = [i for i, d in enumerate(early) if d is None]
            fresh = iter(hash_files([paths[i] for i in rest], workers=workers,
                                    progress=progress,
                                    sizes=None if sizes is None else [sizes[i] for i in rest]))
            return [d if d is not None else next(fresh) for d in early]
    workers = workers or default_workers()
    show = _want_progress(paths) if progress is None else progress
    if show:
        return _hash_with_progress(paths, workers)
    large = [] if workers == 1 or len(paths) == 1 else _large_files(paths, sizes)
    if not large:
        return [sha256_file(p) for p in paths]
    # One task per worker, each taking the next large file when done with the last: a
    # future per file costs more than hashing a small one, and a fixed share would leave
    # one worker with the largest. ``next`` on ``itertools.count`` is atomic. The small
    # files are hashed here afterwards, on one thread.
    workers = min(workers, len(large))
    results: list[str] = [""] * len(paths)
    turns = itertools.count()

    def share() -> None:
        while (turn := next(turns)) < len(large):
            index = large[turn]
            results[index] = sha256_file(paths[index])

    from concurrent.futures import ThreadPoolExecutor  # (and logging): not at every start-up

    with ThreadPoolExecutor(max_workers=workers) as pool:
        for future in [pool.submit(share) for _ in range(workers)]:
            future.result()
    for index, path in enumerate(paths):
        if not results[index]:
            results[index] = sha256_file(path)
    return results


def _large_files(paths: Sequence[str | os.PathLike[str]],
                 sizes: Sequence[int] | None) -> list[int]:
    """Indexes of the files worth a worker thread, or ``[]`` when a pool is not worth it.

    Starting threads costs ~0.5 ms: worth it for at least two files of ``_POOL_MIN_SIZE``
    or more that together hold ``_POOL_MIN_BYTES``. A file that cannot be stat'ed counts
    as small (its hash raises the error, in order).
    """
    if sizes is None:
        known = []
        for path in paths:
            try:
                known.append(os.stat(path).st_size)
            except OSError:
                known.append(0)
        sizes = known
    large = [i for i, size in enumerate(sizes) if size >= _POOL_MIN_SIZE]
    if len(large) < 2 or sum(sizes[i] for i in large) < _POOL_MIN_BYTES:
        return []
    return large


def _want_progress(paths: Sequence[str | os.PathLike[str]]) -> bool:
    if not sys.stderr.isatty():
        return False
    total = 0
    for path in paths:
        total += os.stat(path).st_size
        if total >= _PROGRESS_BYTES:
            return True
    return False


def _hash_with_progress(paths: Sequence[str | os.PathLike[str]], workers: int) -> list[str]:
    from rich.progress import BarColumn, DownloadColumn, Progress, TransferSpeedColumn

    sizes = [os.stat(p).st_size for p in paths]
    with Progress("[progress.description]{task.description}", BarColumn(), DownloadColumn(),
                  TransferSpeedColumn(), transient=True) as bar:
        task = bar.add_task("hashing", total=sum(sizes))

        def one(item: tuple[Path, int]) -> str:
            digest = sha256_file(item[0])
            bar.advance(task, item[1])
            return digest

        from concurrent.futures import ThreadPoolExecutor

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


def stat_keys(paths: Sequence[str | os.PathLike[str]], *, root: Path | None = None,
              ) -> list[StatKey]:
    """``stat_key`` of each path (following symlinks, as ``os.stat``), in order.

    Paths are absolute, or relative to ``root`` when it is given. Files of one directory
    are stat'ed by name relative to an open descriptor of it, which spares the kernel the
    walk down the whole path each time. Any error is raised as ``os.stat`` of the whole
    path raises it.
    """
    keys: list[StatKey] = []
    base = os.fspath(root) if root is not None else None
    current: str | None = None
    fd = -1
    relative = os.stat in os.supports_dir_fd
    try:
        for path in paths:
            text = os.fspath(path)
            head, slash, name = text.rpartition("/")
            if not slash:
                head = ""
            if relative and head != current:
                if fd >= 0:
                    os.close(fd)
                    fd = -1
                current = head
                directory = (f"{base}/{head}" if head else base) if base is not None else (
                    head or ("/" if slash else "."))
                with contextlib.suppress(OSError):
                    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
            try:
                if fd < 0 or not name:
                    raise OSError
                st = os.stat(name, dir_fd=fd)
            except OSError:  # the error, named by the whole path
                st = os.stat(f"{base}/{text}" if base is not None else text)
            keys.append((st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns))
    finally:
        if fd >= 0:
            os.close(fd)
    return keys


class DigestCache:
    """Root-relative path → (stat key, digest), in SQLite under the cache directory.

    Disposable: deleting it only costs a re-hash. Safe for concurrent processes (WAL).
    With ``keep_open`` one connection serves every call until :meth:`close` (a captured
    run asks once per ``run.use``: opening SQLite, WAL and the table check each time cost
    more than the lookup); it is shared by threads under a lock, and a forked child opens
    its own. Otherwise each call opens and closes its own.
    """

    def __init__(self, db_path: Path, root: Path | None = None, *,
                 keep_open: bool = False) -> None:
        self.db_path = db_path
        # With the lake's root, a file is stat'ed by its root-relative path (from an open
        # descriptor of its directory) instead of its absolute ``Path``, which is ~1 µs
        # a file cheaper; the pairs given to ``digests`` must then be ``(rel, root/rel)``.
        self.root = root
        self.keep_open = keep_open
        self._conn: sqlite3.Connection | None = None
        self._pid = 0
        self._lock = threading.Lock()

    def _connect(self) -> sqlite3.Connection:
        conn = connect(self.db_path, shared=self.keep_open)
        retry_locked(lambda: conn.execute(
            "CREATE TABLE IF NOT EXISTS digests (path TEXT PRIMARY KEY, dev INT, ino INT,"
            " size INT, mtime_ns INT, ctime_ns INT, digest TEXT NOT NULL) WITHOUT ROWID"))
        return conn

    @contextlib.contextmanager
    def _connection(self) -> Iterator[sqlite3.Connection]:
        if not self.keep_open:
            conn = self._connect()
            try:
                yield conn
            finally:
                conn.close()
            return
        with self._lock:
            if self._conn is None or self._pid != os.getpid():
                # A connection inherited over fork is the parent's: never used, nor closed.
                self._conn, self._pid = self._connect(), os.getpid()
            yield self._conn

    def close(self) -> None:
        """Close the kept connection (a later call opens a new one)."""
        with self._lock:
            if self._conn is not None and self._pid == os.getpid():
                self._conn.close()
            self._conn = None

    def __enter__(self) -> DigestCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @staticmethod
    def _write(conn: sqlite3.Connection, sql: str, rows: list[tuple[Any, ...]]) -> None:
        """One write transaction for a batch (autocommit would make one per row)."""
        begin_immediate(conn)
        try:
            conn.executemany(sql, rows)
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    def _lookup(self, conn: sqlite3.Connection, rels: Sequence[str]) -> dict[str, tuple]:
        """Rows by path: ``(path, dev, ino, size, mtime_ns, ctime_ns, digest)``.

        Many files of one directory are read with one range scan over its paths (a third
        cheaper than binding them all in ``IN`` lists), unless the cache holds many more
        files there than were asked for; the others in ``IN`` lists of 900.
        """
        found: dict[str, tuple] = {}
        by_dir: dict[str, list[str]] = {}
        for rel in rels:
            by_dir.setdefault(rel.rpartition("/")[0], []).append(rel)
        rest: list[str] = []
        for head, members in by_dir.items():
            if len(members) < _RANGE_MIN or not head:
                rest += members
                continue
            limit = 2 * len(members) + 64
            rows = conn.execute(
                "SELECT path, dev, ino, size, mtime_ns, ctime_ns, digest FROM digests"
                " WHERE path > ? AND path < ? LIMIT ?", (head + "/", head + "0", limit)).fetchall()
            if len(rows) >= limit:
                rest += members  # a crowded directory: ask for these paths only
                continue
            wanted = set(members)
            found.update((row[0], row) for row in rows if row[0] in wanted)
        rels = rest
        for start in range(0, len(rels), 900):
            chunk = rels[start:start + 900]
            marks = ",".join("?" * len(chunk))
            found.update((row[0], row) for row in conn.execute(
                f"SELECT path, dev, ino, size, mtime_ns, ctime_ns, digest FROM digests"
                f" WHERE path IN ({marks})", chunk))
        return found

    def digests(self, items: Sequence[tuple[str, str | os.PathLike[str]]], *, fresh: bool = False,
                workers: int | None = None) -> list[str]:
        """Digests of ``(rel, absolute)`` pairs; re-hashes only what changed unless ``fresh``.

        ``fresh`` neither reads nor writes the cache: the gate's hashes must not depend on
        it and a check must write nothing. Unchanged files cost a ``stat`` and a row:
        one query per 900 paths, and the stats relative to an open directory.
        """
        if fresh:
            return hash_files([p for _, p in items], workers=workers)
        return [digest for digest, _ in self.digests_and_stats(items, workers=workers)]

    def digests_and_stats(self, items: Sequence[tuple[str, str | os.PathLike[str]]], *,
                          workers: int | None = None, new: bool = False,
                          ) -> list[tuple[str, StatKey]]:
        """``digests`` with the stat key each was checked against (its size is ``[2]``).

        ``new`` says the paths cannot be in the cache yet (a run's fresh outputs): the
        lookup is skipped and every file hashed, as a miss would be. The stat is taken
        before the hash, so a file changed meanwhile is re-hashed next time.
        """
        if not items:
            return []
        rels = [r for r, _ in items]
        with self._connection() as conn:
            cached = {} if new else self._lookup(conn, rels)
            if self.root is not None:
                keys = stat_keys(rels, root=self.root)
            else:
                keys = stat_keys([p for _, p in items])
            results: list[str] = []
            stale: list[int] = []
            get = cached.get
            for index, (rel, key) in enumerate(zip(rels, keys, strict=True)):
                row = get(rel)
                if row is not None and row[1:6] == key:
                    results.append(row[6])
                else:
                    results.append("")
                    stale.append(index)
            if prehash.pending() and len(stale) < len(items):  # served: no hash wanted
                prehash.discard([items[i][1] for i, d in enumerate(results) if d])
            if stale:
                fresh_digests = hash_files([items[i][1] for i in stale], workers=workers,
                                           sizes=[keys[i][2] for i in stale])
                rows = []
                for index, digest in zip(stale, fresh_digests, strict=True):
                    results[index] = digest
                    rows.append((rels[index], *keys[index], digest))
                self._write(conn, "INSERT OR REPLACE INTO digests VALUES (?,?,?,?,?,?,?)", rows)
        return list(zip(results, keys, strict=True))

    def forget(self, rels: Iterable[str]) -> None:
        with self._connection() as conn:
            self._write(conn, "DELETE FROM digests WHERE path = ?", [(r,) for r in rels])
