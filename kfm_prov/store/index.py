"""The lineage index: SQLite under the cache directory, rebuildable from the receipts.

Runs join by digest: run B is downstream of run A when B used a file whose digest A
produced, whatever the two paths were. Nothing is joined by name. The index is disposable:
``rebuild`` recreates it from the run directories, raw manifests and promotion records,
and must give the same answers as the incrementally updated one.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

from kfm_prov.core.perf import gc_paused
from kfm_prov.errors import InputError, NotFoundError
from kfm_prov.store.dbutil import begin_immediate, connect

SCHEMA_VERSION = "2"

_DDL = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    family TEXT NOT NULL,
    pipeline_id TEXT NOT NULL,
    status TEXT NOT NULL,
    overall_status TEXT NOT NULL,
    started_at TEXT NOT NULL,
    ended_at TEXT,
    git_commit TEXT NOT NULL,
    spec_hash TEXT NOT NULL,
    run_dir TEXT NOT NULL,
    evidence_digest TEXT NOT NULL,
    secrets INTEGER NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS runs_by_family ON runs (family, started_at);
CREATE TABLE IF NOT EXISTS io (
    run_id TEXT NOT NULL,
    direction TEXT NOT NULL CHECK (direction IN ('in', 'out')),
    path TEXT NOT NULL,
    digest TEXT NOT NULL,
    role TEXT NOT NULL,
    zone TEXT NOT NULL,
    size INTEGER,
    media_type TEXT,
    sensitivity TEXT,
    PRIMARY KEY (run_id, direction, path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS io_by_digest ON io (digest, direction);
CREATE TABLE IF NOT EXISTS redactions (
    run_id TEXT NOT NULL,
    source TEXT NOT NULL,
    output TEXT NOT NULL,
    sensitivity TEXT NOT NULL,
    profile TEXT NOT NULL,
    PRIMARY KEY (run_id, output)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS raw (
    path TEXT PRIMARY KEY,
    digest TEXT NOT NULL,
    license TEXT,
    attribution TEXT,
    sensitivity TEXT NOT NULL,
    manifest TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS raw_by_digest ON raw (digest);
CREATE TABLE IF NOT EXISTS promotions (
    family TEXT NOT NULL,
    version TEXT NOT NULL,
    run_id TEXT NOT NULL,
    path TEXT NOT NULL,
    digest TEXT NOT NULL,
    source_path TEXT NOT NULL,
    promoted_at TEXT NOT NULL,
    item TEXT,
    bundle TEXT,
    certificate TEXT,
    PRIMARY KEY (family, version, path)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS promotions_by_digest ON promotions (digest);
CREATE INDEX IF NOT EXISTS promotions_by_run ON promotions (run_id);
"""


@dataclass(frozen=True)
class RunRow:
    """One run as the index knows it (a cache of its receipts: it locates, never vouches)."""

    run_id: str
    family: str
    pipeline_id: str
    status: str
    overall_status: str
    started_at: str
    ended_at: str | None
    git_commit: str
    spec_hash: str
    run_dir: str
    evidence_digest: str  # over receipts, prov.json and logs when indexed
    secrets: int  # secrets found in that evidence when indexed

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class IoRow:
    run_id: str
    direction: str
    path: str
    digest: str
    role: str
    zone: str
    size: int | None
    media_type: str | None
    sensitivity: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


@dataclass(frozen=True)
class RedactionRow:
    run_id: str
    source: str
    output: str
    sensitivity: str
    profile: str  # canonical JSON


@dataclass(frozen=True)
class RawRow:
    path: str
    digest: str
    license: str | None
    attribution: str | None
    sensitivity: str
    manifest: str


@dataclass(frozen=True)
class PromotionRow:
    family: str
    version: str
    run_id: str
    path: str
    digest: str
    source_path: str
    promoted_at: str
    item: str | None
    bundle: str | None
    certificate: str | None


#: What replaces an index's content: run entries, raw rows, promotion rows.
Snapshot = tuple[Sequence["IndexEntry"], Sequence[RawRow], Sequence[PromotionRow]]

_RUN_COLS = ("run_id, family, pipeline_id, status, overall_status, started_at, ended_at,"
             " git_commit, spec_hash, run_dir, evidence_digest, secrets")
_IO_COLS = "run_id, direction, path, digest, role, zone, size, media_type, sensitivity"
_BATCH = 900  # stays under SQLite's host-parameter limit
_BULK_CACHE_KIB = 192 * 1024  # page cache while rebuilding (see replace_rows)
TABLES = ("runs", "io", "redactions", "raw", "promotions")


@dataclass(frozen=True)
class IndexStats:
    """What ``index status`` says about an index itself."""

    backend: str  # "sqlite" or "postgresql"
    location: str  # the file, or postgresql://host:port/db (never credentials)
    lake: str | None  # the schema of the lake in a shared database
    schema_version: str
    bytes: int
    rows: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


class IndexedRun(NamedTuple):
    """What ``replace_all`` tells its reader about a run indexed now."""

    evidence_digest: str
    run_dir: str


@dataclass(frozen=True)
class IndexEntry:
    """Everything the index holds about one run."""

    run: RunRow
    files: Sequence[IoRow]
    redactions: Sequence[RedactionRow] = ()


def _corrupt(exc: sqlite3.DatabaseError) -> bool:
    """A file that is not (or no longer) a database, as opposed to a busy or locked one."""
    text = str(exc).lower()
    return "not a database" in text or "malformed" in text or "corrupt" in text


class LineageIndex:
    """The SQLite lineage index (a ``LineageStore``); every write is one transaction."""

    def __init__(self, db_path: Path) -> None:
        self.db_path = db_path
        self._conn: sqlite3.Connection | None = None
        self.stale = False

    # -- connection ---------------------------------------------------------------------------

    @property
    def conn(self) -> sqlite3.Connection:
        if self._conn is None:
            try:
                conn = self._open()
            except sqlite3.DatabaseError as exc:
                if not _corrupt(exc):
                    raise
                self._discard()  # disposable: a file that is no database is rebuilt
                conn = self._open()
            self._conn = conn
        return self._conn

    def _open(self) -> sqlite3.Connection:
        conn = connect(self.db_path)
        try:
            self.stale = self._migrate(conn)
            conn.execute("SELECT 1 FROM runs LIMIT 1").fetchone()  # reads a page of data
        except BaseException:
            conn.close()
            raise
        return conn

    def _discard(self) -> None:
        for suffix in ("", "-wal", "-shm", "-journal"):
            Path(f"{self.db_path}{suffix}").unlink(missing_ok=True)

    @staticmethod
    def _migrate(conn: sqlite3.Connection) -> bool:
        """Create the tables; drop an index of another schema version (it is disposable).

        Returns True when the index was just created or dropped and needs a rebuild.
        """
        begin_immediate(conn)
        try:
            has_meta = conn.execute("SELECT 1 FROM sqlite_master WHERE name = 'meta'").fetchone()
            version = has_meta and conn.execute(
                "SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            stale = not version or version[0] != SCHEMA_VERSION
            if stale:
                for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"
                                            ).fetchall():
                    conn.execute(f'DROP TABLE IF EXISTS "{name}"')
                for statement in _DDL.split(";"):
                    if statement.strip():
                        conn.execute(statement)
                conn.execute("INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                             (SCHEMA_VERSION,))
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
        return bool(stale)

    def needs_rebuild(self) -> bool:
        """Open the index; True when it was just created or dropped (another schema)."""
        self.conn  # noqa: B018 - opening creates or migrates the file and sets ``stale``
        stale, self.stale = self.stale, False
        return stale

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def __enter__(self) -> LineageIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """``BEGIN IMMEDIATE`` so concurrent writers queue instead of failing mid-way."""
        conn = self.conn
        begin_immediate(conn)
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    # -- writes ---------------------------------------------------------------------------

    def put_run(self, entry: IndexEntry, raw_rows: Sequence[RawRow] = ()) -> None:
        """Insert or replace one run with its inputs, outputs and redactions (idempotent)."""
        with self.transaction() as conn:
            self.put_entries(conn, [entry])
            self._put_raw(conn, raw_rows)

    @staticmethod
    def put_entries(conn: sqlite3.Connection, entries: Iterable[IndexEntry]) -> None:
        """Write runs inside a caller's transaction, replacing what each had before."""
        for entry in entries:
            run_id = entry.run.run_id
            conn.execute("DELETE FROM io WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM redactions WHERE run_id = ?", (run_id,))
            conn.execute(f"INSERT OR REPLACE INTO runs ({_RUN_COLS})"
                         " VALUES (?,?,?,?,?,?,?,?,?,?,?,?)", tuple(entry.run.__dict__.values()))
            conn.executemany(f"INSERT OR REPLACE INTO io ({_IO_COLS})"
                             " VALUES (?,?,?,?,?,?,?,?,?)",
                             [tuple(f.__dict__.values()) for f in entry.files])
            conn.executemany("INSERT OR REPLACE INTO redactions VALUES (?,?,?,?,?)",
                             [tuple(r.__dict__.values()) for r in entry.redactions])

    def put_raw(self, rows: Sequence[RawRow], *, replace_all: bool = False) -> None:
        with self.transaction() as conn:
            if replace_all:
                conn.execute("DELETE FROM raw")
            self._put_raw(conn, rows)

    @staticmethod
    def _put_raw(conn: sqlite3.Connection, rows: Sequence[RawRow]) -> None:
        conn.executemany("INSERT OR REPLACE INTO raw VALUES (?,?,?,?,?,?)",
                         [tuple(r.__dict__.values()) for r in rows])

    def put_promotions(self, rows: Sequence[PromotionRow]) -> None:
        with self.transaction() as conn:
            conn.executemany("INSERT OR REPLACE INTO promotions VALUES (?,?,?,?,?,?,?,?,?,?)",
                             [tuple(r.__dict__.values()) for r in rows])

    def delete_run(self, run_id: str) -> None:
        with self.transaction() as conn:
            for table in ("io", "redactions", "runs"):
                conn.execute(f"DELETE FROM {table} WHERE run_id = ?", (run_id,))

    def replace_all(self, read: Callable[[Mapping[str, IndexedRun]], Snapshot]) -> Snapshot:
        """Swap the whole content in one write transaction (``index rebuild``).

        ``read`` is called under the write lock with the runs indexed now (id → evidence
        digest and directory), so the caller can reconcile what changed since it scanned
        the files; what it returns replaces everything.
        """
        with self.transaction() as conn:
            indexed = {run_id: IndexedRun(evidence, run_dir) for run_id, evidence, run_dir
                       in conn.execute("SELECT run_id, evidence_digest, run_dir FROM runs")}
            snapshot = read(indexed)
            self.replace_rows(conn, *snapshot)
        return snapshot

    @classmethod
    @gc_paused  # a million short-lived rows beside a lake's worth of live ones
    def replace_rows(cls, conn: sqlite3.Connection, entries: Iterable[IndexEntry],
                     raw_rows: Sequence[RawRow], promotions: Sequence[PromotionRow]) -> None:
        """``replace_all`` inside a caller's transaction.

        A whole lake is a million rows or more: with SQLite's default 2 MiB page cache,
        inserting them into the digest index evicts and re-reads pages at random (4x
        slower), so the cache is raised to ``_BULK_CACHE_KIB`` for the duration.
        """
        previous = conn.execute("PRAGMA cache_size").fetchone()[0]
        conn.execute(f"PRAGMA cache_size = -{_BULK_CACHE_KIB}")
        try:
            for table in TABLES:
                conn.execute(f"DELETE FROM {table}")
            cls.put_entries(conn, entries)
            cls._put_raw(conn, raw_rows)
            conn.executemany("INSERT OR REPLACE INTO promotions VALUES (?,?,?,?,?,?,?,?,?,?)",
                             [tuple(r.__dict__.values()) for r in promotions])
        finally:
            conn.execute(f"PRAGMA cache_size = {previous}")

    # -- reads ----------------------------------------------------------------------------

    def run(self, run_id: str) -> RunRow | None:
        row = self.conn.execute(f"SELECT {_RUN_COLS} FROM runs WHERE run_id = ?",
                                (run_id,)).fetchone()
        return RunRow(*row) if row else None

    def resolve_run(self, text: str) -> RunRow:
        """A run by its id or a unique prefix of at least 6 characters (any case)."""
        return resolve_run(self, text)

    def runs(self, family: str | None = None) -> list[RunRow]:
        if family is None:
            rows = self.conn.execute(f"SELECT {_RUN_COLS} FROM runs ORDER BY started_at, run_id")
        else:
            rows = self.conn.execute(f"SELECT {_RUN_COLS} FROM runs WHERE family = ?"
                                     " ORDER BY started_at, run_id", (family,))
        return [RunRow(*r) for r in rows]

    def runs_by_id(self, run_ids: Sequence[str]) -> dict[str, RunRow]:
        return {row[0]: RunRow(*row) for row in self._in(
            f"SELECT {_RUN_COLS} FROM runs WHERE run_id IN ({{marks}})", run_ids)}

    def files(self, run_ids: Sequence[str], direction: str | None = None) -> list[IoRow]:
        sql = f"SELECT {_IO_COLS} FROM io WHERE run_id IN ({{marks}})"
        rows = [IoRow(*r) for r in self._in(sql, run_ids)]
        if direction is not None:
            rows = [r for r in rows if r.direction == direction]
        return sorted(rows, key=lambda r: (r.run_id, r.direction, r.path))

    def producers(self, digests: Sequence[str]) -> list[IoRow]:
        """Outputs of any run with these digests: the join that makes lineage."""
        return [IoRow(*r) for r in self._in(
            f"SELECT {_IO_COLS} FROM io WHERE direction = 'out' AND digest IN ({{marks}})",
            digests)]

    def consumers(self, digests: Sequence[str]) -> list[IoRow]:
        return [IoRow(*r) for r in self._in(
            f"SELECT {_IO_COLS} FROM io WHERE direction = 'in' AND digest IN ({{marks}})",
            digests)]

    def raw_by_digest(self, digests: Sequence[str]) -> list[RawRow]:
        return [RawRow(*r) for r in self._in(
            "SELECT * FROM raw WHERE digest IN ({marks})", digests)]

    def raw_by_path(self, paths: Sequence[str]) -> list[RawRow]:
        return [RawRow(*r) for r in self._in("SELECT * FROM raw WHERE path IN ({marks})", paths)]

    def all_raw(self) -> list[RawRow]:
        return [RawRow(*r) for r in self.conn.execute("SELECT * FROM raw ORDER BY path")]

    def promotions(self, family: str | None = None) -> list[PromotionRow]:
        if family is None:
            rows = self.conn.execute("SELECT * FROM promotions ORDER BY family, version, path")
        else:
            rows = self.conn.execute("SELECT * FROM promotions WHERE family = ?"
                                     " ORDER BY version, path", (family,))
        return [PromotionRow(*r) for r in rows]

    def promotions_by_digest(self, digests: Sequence[str]) -> list[PromotionRow]:
        return [PromotionRow(*r) for r in self._in(
            "SELECT * FROM promotions WHERE digest IN ({marks})", digests)]

    def orphans(self) -> list[IoRow]:
        """Inputs that no run produced, that are no recorded raw file and were never promoted."""
        rows = self.conn.execute(
            f"SELECT {_IO_COLS} FROM io AS i WHERE direction = 'in'"
            " AND NOT EXISTS (SELECT 1 FROM io AS o WHERE o.direction = 'out'"
            "                 AND o.digest = i.digest)"
            " AND NOT EXISTS (SELECT 1 FROM raw AS r WHERE r.digest = i.digest)"
            " AND NOT EXISTS (SELECT 1 FROM promotions AS p WHERE p.digest = i.digest)"
            " ORDER BY run_id, path")
        return [IoRow(*r) for r in rows]

    def upstream_runs(self, run_id: str) -> list[str]:
        rows = self.conn.execute(
            "SELECT DISTINCT o.run_id FROM io AS i JOIN io AS o ON o.digest = i.digest"
            " AND o.direction = 'out' WHERE i.run_id = ? AND i.direction = 'in'"
            " AND o.run_id != i.run_id ORDER BY o.run_id", (run_id,))
        return [r[0] for r in rows]

    def closure_runs(self, runs: Sequence[str] = (), digests: Sequence[str] = (), *,
                     upstream: bool = True, limit: int = 20_000) -> list[str] | None:
        """Every run linked to these runs and files by digest, in one recursive query.

        Upstream: the runs that produced what they used, transitively (from a file: its
        producers first); downstream: the runs that used what they produced. It is a
        superset of what any walk that picks one producer per input reaches, so a walk
        can run on rows fetched for these runs alone. None when there are more than
        ``limit`` (a digest made by very many runs, such as an empty file's): walk level
        by level instead.
        """
        import json

        near, far = ("in", "out") if upstream else ("out", "in")
        rows = self.conn.execute(
            "WITH RECURSIVE seed(run_id) AS ("
            "   SELECT value FROM json_each(:runs)"
            "   UNION SELECT f.run_id FROM io AS f WHERE f.direction = :far"
            "   AND f.digest IN (SELECT value FROM json_each(:digests))),"
            " walk(run_id) AS ("
            "   SELECT run_id FROM seed"
            "   UNION SELECT b.run_id FROM walk"
            "   JOIN io AS a ON a.run_id = walk.run_id AND a.direction = :near"
            "   JOIN io AS b ON b.digest = a.digest AND b.direction = :far"
            "   LIMIT :limit)"
            " SELECT run_id FROM walk",
            {"runs": json.dumps(list(runs)), "digests": json.dumps(list(digests)),
             "near": near, "far": far, "limit": limit + 1}).fetchall()
        if len(rows) > limit:
            return None
        return [r[0] for r in rows]

    def redactions(self, run_ids: Sequence[str]) -> list[RedactionRow]:
        return [RedactionRow(*r) for r in self._in(
            "SELECT * FROM redactions WHERE run_id IN ({marks})", run_ids)]

    def stats(self) -> IndexStats:
        """Size on disk (with the WAL) and row counts."""
        conn = self.conn
        rows = {table: int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
                for table in TABLES}
        size = sum(p.stat().st_size for p in (self.db_path, self.db_path.with_name(
            self.db_path.name + "-wal")) if p.exists())
        return IndexStats("sqlite", str(self.db_path), None, SCHEMA_VERSION, size, rows)

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted: two indexes that answer alike dump alike."""
        return {table: sorted(self.conn.execute(f"SELECT * FROM {table}").fetchall(),
                              key=repr)
                for table in TABLES}

    def _in(self, sql: str, values: Sequence[str]) -> Iterator[tuple[Any, ...]]:
        unique = list(dict.fromkeys(values))
        for start in range(0, len(unique), _BATCH):
            chunk = unique[start:start + _BATCH]
            yield from self.conn.execute(sql.format(marks=",".join("?" * len(chunk))), chunk)


def resolve_run(store: Any, text: str) -> RunRow:
    """A run of ``store`` (either backend) by its id or a unique prefix of at least 6
    characters (any case): one rule for both."""
    wanted = text.strip().upper()
    row = store.run(wanted) or store.run(text.strip())
    if row is None and 0 < len(wanted) < 6:
        raise InputError(f"run id prefix {text!r} is too short: give at least 6"
                         " characters", hint="see `kfm-prov runs`")
    if row is None and len(wanted) >= 6:
        matches = [r for r in store.runs() if r.run_id.upper().startswith(wanted)]
        if len(matches) == 1:
            row = matches[0]
        elif len(matches) > 1:
            raise InputError(f"run id prefix {text!r} is ambiguous:"
                             f" {', '.join(r.run_id for r in matches[:5])}")
    if row is None:
        raise NotFoundError(f"no run {text!r} in the index", hint="see `kfm-prov runs`;"
                            " after copying runs in, `kfm-prov index rebuild`")
    return row
