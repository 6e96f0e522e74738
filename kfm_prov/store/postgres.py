"""The lineage index on PostgreSQL: one index shared by runners on many machines.

It answers exactly as ``LineageIndex`` (SQLite) does, row for row and in the same order,
so every command gives the same bytes on either backend. Choices, and why:

- One schema per lake (``kfm_lake_<name>``) rather than a lake-id column: every query is
  the SQLite query with the schema in front, so no query can forget the lake and read
  another's rows; a rebuild swaps one lake's tables without touching the others; a lake's
  size is its schema's size and removing a lake is ``DROP SCHEMA``. The price is a few
  catalog rows per lake, nothing for tens or thousands of lakes.
- Text columns use the ``"C"`` collation: SQLite compares bytes, and so must ``ORDER BY``
  here, whatever the database's locale is.
- Writers lock rows, not the index: a run upserts its own ``runs`` row first (two writers
  of one run queue there) and then replaces its ``io`` rows; shared raw rows are only
  written (and locked) when they change. Promotions of one family are serialised by a
  transaction-scoped advisory lock on lake + family; other families go on in parallel.
- Connections come from one pool per process and URL; a lost connection (or a deadlock,
  or a server restart) is retried: every write replaces what it writes, so a retry after a
  commit whose answer was lost changes nothing.
- The schema is versioned (``meta.schema_version``); older schemas are migrated step by
  step under an advisory lock, a newer one is refused (an older kfm-prov must not write it).
- psycopg is imported here only, and this module only when a PostgreSQL URL is configured.
"""

from __future__ import annotations

import atexit
import os
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlsplit

import psycopg
from psycopg import sql
from psycopg_pool import ConnectionPool, PoolTimeout

from kfm_prov.errors import InputError, RefusedError
from kfm_prov.store.index import (
    TABLES,
    IndexedRun,
    IndexEntry,
    IndexStats,
    IoRow,
    PromotionRow,
    RawRow,
    RedactionRow,
    RunRow,
    Snapshot,
    resolve_run,
)

T = TypeVar("T")
SCHEMA_VERSION = 1
SCHEMA_PREFIX = "kfm_lake_"
RETRIES = 6
CONNECT_TIMEOUT = 10
POOL_MAX = 4

_T = 'TEXT COLLATE "C"'
# version → statements that take a schema from version - 1 to version; {s} is the schema.
MIGRATIONS: dict[int, str] = {
    1: f"""
CREATE TABLE {{s}}.runs (
    run_id {_T} PRIMARY KEY,
    family {_T} NOT NULL,
    pipeline_id {_T} NOT NULL,
    status {_T} NOT NULL,
    overall_status {_T} NOT NULL,
    started_at {_T} NOT NULL,
    ended_at {_T},
    git_commit {_T} NOT NULL,
    spec_hash {_T} NOT NULL,
    run_dir {_T} NOT NULL,
    evidence_digest {_T} NOT NULL,
    secrets INTEGER NOT NULL
);
CREATE INDEX runs_by_family ON {{s}}.runs (family, started_at);
CREATE TABLE {{s}}.io (
    run_id {_T} NOT NULL,
    direction {_T} NOT NULL CHECK (direction IN ('in', 'out')),
    path {_T} NOT NULL,
    digest {_T} NOT NULL,
    role {_T} NOT NULL,
    zone {_T} NOT NULL,
    size BIGINT,
    media_type {_T},
    sensitivity {_T},
    PRIMARY KEY (run_id, direction, path)
);
CREATE INDEX io_by_digest ON {{s}}.io (digest, direction);
CREATE TABLE {{s}}.redactions (
    run_id {_T} NOT NULL,
    source {_T} NOT NULL,
    output {_T} NOT NULL,
    sensitivity {_T} NOT NULL,
    profile {_T} NOT NULL,
    PRIMARY KEY (run_id, output)
);
CREATE TABLE {{s}}.raw (
    path {_T} PRIMARY KEY,
    digest {_T} NOT NULL,
    license {_T},
    attribution {_T},
    sensitivity {_T} NOT NULL,
    manifest {_T} NOT NULL
);
CREATE INDEX raw_by_digest ON {{s}}.raw (digest);
CREATE TABLE {{s}}.promotions (
    family {_T} NOT NULL,
    version {_T} NOT NULL,
    run_id {_T} NOT NULL,
    path {_T} NOT NULL,
    digest {_T} NOT NULL,
    source_path {_T} NOT NULL,
    promoted_at {_T} NOT NULL,
    item {_T},
    bundle {_T},
    certificate {_T},
    PRIMARY KEY (family, version, path)
);
CREATE INDEX promotions_by_digest ON {{s}}.promotions (digest);
CREATE INDEX promotions_by_run ON {{s}}.promotions (run_id);
""",
}

_COLUMNS: dict[str, tuple[str, ...]] = {
    "runs": ("run_id", "family", "pipeline_id", "status", "overall_status", "started_at",
             "ended_at", "git_commit", "spec_hash", "run_dir", "evidence_digest", "secrets"),
    "io": ("run_id", "direction", "path", "digest", "role", "zone", "size", "media_type",
           "sensitivity"),
    "redactions": ("run_id", "source", "output", "sensitivity", "profile"),
    "raw": ("path", "digest", "license", "attribution", "sensitivity", "manifest"),
    "promotions": ("family", "version", "run_id", "path", "digest", "source_path",
                   "promoted_at", "item", "bundle", "certificate"),
}
_TYPES = {"size": "bigint", "secrets": "integer"}
_KEYS = {"runs": ("run_id",), "io": ("run_id", "direction", "path"),
         "redactions": ("run_id", "output"), "raw": ("path",),
         "promotions": ("family", "version", "path")}


def describe(url: str) -> str:
    """``postgresql://host:port/db``: what a message may say about a URL (no user, no
    password, no query string)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 5432
    except ValueError:
        return "postgresql://?"
    return f"postgresql://{host}:{port}/{parts.path.strip('/')}"


class IndexUnavailable(RefusedError):
    """The PostgreSQL index cannot be reached (exit 1). The message names host and
    database only."""


def _reason(exc: BaseException, secret: str | None) -> str:
    """The first line of a driver error, with anything that could be the password cut."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    if secret:
        text = text.replace(secret, "***")
    return text[:300]


# -- pools -------------------------------------------------------------------------------------

_POOLS: dict[tuple[str, str | None], ConnectionPool] = {}
_POOLS_LOCK = threading.Lock()
_INHERITED: list[ConnectionPool] = []


def _forget_pools_after_fork() -> None:
    """In a forked child: never use (nor close, which would end the parent's sessions)
    the parent's pools; the child opens its own on first use."""
    global _POOLS_LOCK
    _INHERITED.extend(_POOLS.values())  # kept alive: their sockets are the parent's
    _POOLS.clear()
    _POOLS_LOCK = threading.Lock()


os.register_at_fork(after_in_child=_forget_pools_after_fork)


def _pool(url: str, password: str | None) -> ConnectionPool:
    """This process's pool for ``url``, opened on first use (its threads start then)."""
    key = (url, password)
    with _POOLS_LOCK:
        pool = _POOLS.get(key)
        if pool is None or pool.closed:
            # autocommit: a read is one statement and one round trip; writes open their
            # own transaction. synchronous_commit off: a commit does not wait for the WAL
            # flush (as SQLite's WAL with synchronous=NORMAL does not); a server crash may
            # forget the last fraction of a second of index writes, never corrupt them,
            # and those runs are on disk for `index status` to name and `rebuild` to add.
            kwargs: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT,
                                      "application_name": "kfm-prov", "autocommit": True,
                                      "options": "-c synchronous_commit=off"}
            if password is not None:
                kwargs["password"] = password
            if not _POOLS:
                atexit.register(close_pools)
            pool = ConnectionPool(url, kwargs=kwargs, min_size=1, max_size=POOL_MAX,
                                  timeout=30, open=True, name="kfm-prov-index")
            _POOLS[key] = pool
    return pool


def close_pools() -> None:
    """Close every pool of this process (at exit, and before forking workers)."""
    with _POOLS_LOCK:
        pools = list(_POOLS.values())
        _POOLS.clear()
    for pool in pools:
        pool.close()


def _transient(exc: psycopg.Error) -> bool:
    """A lost connection, a server going down, a deadlock or a serialisation failure."""
    state = getattr(exc, "sqlstate", None)
    if state is None:
        return isinstance(exc, psycopg.OperationalError)
    return state[:2] in ("08", "57") or state in ("40001", "40P01", "53300")


# -- the index ---------------------------------------------------------------------------------

class PgLineageIndex:
    """The same reads and writes as ``LineageIndex``, in schema ``kfm_lake_<lake>``."""

    def __init__(self, url: str, lake: str, *, password_file: Path | None = None) -> None:
        self.url = url
        self.lake = lake
        self.schema = SCHEMA_PREFIX + lake
        self.location = describe(url)
        self.password_file = password_file
        self._s = sql.Identifier(self.schema)
        self._password: str | None = None
        self._opened = False
        self.stale = False

    # -- connection -------------------------------------------------------------------------

    def needs_rebuild(self) -> bool:
        """Open the index; True when its schema was just created (it must be rebuilt)."""
        self.open()
        stale, self.stale = self.stale, False
        return stale

    def open(self) -> PgLineageIndex:
        """Connect once (outside the pool), create or migrate the schema, set ``stale``."""
        if not self._opened:
            self._password = self._read_password()
            try:
                conn = psycopg.connect(self.url, **self._connect_kwargs())
            except psycopg.Error as exc:
                raise self._unavailable(exc) from None
            try:
                with conn:
                    self.stale = self._migrate(conn)
            except psycopg.Error as exc:
                raise self._unavailable(exc) from None
            finally:
                conn.close()
            self._opened = True
        return self

    def _connect_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"connect_timeout": CONNECT_TIMEOUT,
                                  "application_name": "kfm-prov"}
        if self._password is not None:
            kwargs["password"] = self._password
        return kwargs

    def _read_password(self) -> str | None:
        if self.password_file is None:
            return None
        try:
            return self.password_file.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"cannot read the index password file: {exc.__class__.__name__}",
                             file=str(self.password_file), field="index.password_file"
                             ) from None

    def _unavailable(self, exc: BaseException) -> IndexUnavailable:
        return IndexUnavailable(
            f"the lineage index at {self.location} cannot be used: "
            f"{_reason(exc, self._password)}", file=self.location,
            hint="runs stay recorded on disk; once the server answers, `kfm-prov index"
                 " rebuild` (or `index status`) picks them up")

    def _migrate(self, conn: psycopg.Connection[Any]) -> bool:
        """Bring the schema to ``SCHEMA_VERSION``; True when it was just created (empty).

        Serialised per lake by an advisory lock, so two processes opening a new lake at
        once create it once.
        """
        version = self._version(conn)
        if version == SCHEMA_VERSION:
            return not self._built(conn)
        if version is not None and version > SCHEMA_VERSION:
            raise self._too_new(version)
        with conn.transaction():
            conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                         (f"kfm-prov migrate {self.schema}",))
            version = self._version(conn)
            if version is not None and version > SCHEMA_VERSION:
                raise self._too_new(version)
            created = version is None
            if created:
                conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(self._s))
                conn.execute(sql.SQL("CREATE TABLE {}.meta (key TEXT PRIMARY KEY,"
                                     " value TEXT NOT NULL)").format(self._s))
            for step in range((version or 0) + 1, SCHEMA_VERSION + 1):
                conn.execute(MIGRATIONS[step].format(s=self._s.as_string(conn)))
            conn.execute(sql.SQL("INSERT INTO {}.meta VALUES ('schema_version', %s)"
                                 " ON CONFLICT (key) DO UPDATE SET value = excluded.value"
                                 ).format(self._s), (str(SCHEMA_VERSION),))
            return created or not self._built(conn)

    def _built(self, conn: psycopg.Connection[Any]) -> bool:
        """Whether a rebuild ever committed here: a schema created by a process killed
        before its first rebuild finished is rebuilt by the next one that opens it."""
        return conn.execute(self._q("SELECT 1 FROM {s}.meta WHERE key = 'built'")
                            ).fetchone() is not None

    def _version(self, conn: psycopg.Connection[Any]) -> int | None:
        found = conn.execute("SELECT to_regclass(%s)", (f'"{self.schema}".meta',)).fetchone()
        if found is None or found[0] is None:
            return None
        row = conn.execute(sql.SQL("SELECT value FROM {}.meta WHERE key = 'schema_version'"
                                   ).format(self._s)).fetchone()
        return int(row[0]) if row else 0

    def _too_new(self, version: int) -> RefusedError:
        return RefusedError(
            f"the lineage index at {self.location} (lake {self.lake}) has schema version"
            f" {version}, newer than this kfm-prov understands ({SCHEMA_VERSION})",
            file=self.location, hint="upgrade kfm-prov on this machine")

    def close(self) -> None:
        """Nothing to release: connections go back to the process's pool after each use."""

    def __enter__(self) -> PgLineageIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _retry(self, action: Callable[[psycopg.Connection[Any]], T], *,
               transaction: bool = True) -> T:
        """``action(conn)`` in one transaction (or autocommit, for a single statement),
        again on a transient failure."""
        self.open()
        pool = _pool(self.url, self._password)
        pause = 0.05
        for attempt in range(RETRIES):
            try:
                with pool.connection() as conn:
                    if not transaction:
                        return action(conn)
                    with conn.transaction():
                        return action(conn)
            except PoolTimeout as exc:
                raise self._unavailable(exc) from None
            except psycopg.Error as exc:
                if not _transient(exc):
                    raise
                if attempt == RETRIES - 1:
                    raise self._unavailable(exc) from None
            time.sleep(pause * (1 + random.random()))
            pause = min(pause * 2, 2.0)
        raise AssertionError("unreachable")

    @contextmanager
    def transaction(self) -> Iterator[psycopg.Connection[Any]]:
        """One transaction on a pooled connection (not retried: the caller's block may
        not be repeatable)."""
        self.open()
        try:
            with _pool(self.url, self._password).connection() as conn, conn.transaction():
                yield conn
        except PoolTimeout as exc:
            raise self._unavailable(exc) from None
        except psycopg.Error as exc:
            if _transient(exc):
                raise self._unavailable(exc) from None
            raise

    def _write(self, action: Callable[[psycopg.Connection[Any]], None]) -> None:
        """``action`` in a write transaction that first takes this lake's lock shared.

        Writers never wait for each other on it; a rebuild takes it exclusive before any
        table, so a writer waits for a rebuild before touching a table rather than
        holding one the rebuild must drop (a deadlock otherwise: the rebuild's
        ``EXCLUSIVE`` lock lets a writer read ``raw``, then the rebuild needs that table
        for itself while the writer waits for ``runs``).
        """
        def locked(conn: psycopg.Connection[Any]) -> None:
            conn.execute("SELECT pg_advisory_xact_lock_shared(hashtextextended(%s, 0))",
                         (self._lake_key(),))
            action(conn)
        self._retry(locked)

    def _lake_key(self) -> str:
        return f"kfm-prov lake {self.schema}"

    def _q(self, text: str) -> sql.Composed:
        """``text`` with ``{s}`` replaced by this lake's schema."""
        return sql.SQL(text).format(s=self._s)

    def _fetch(self, text: str, params: Any = None) -> list[tuple[Any, ...]]:
        query = self._q(text)
        return self._retry(lambda conn: conn.execute(query, params).fetchall(),
                           transaction=False)

    # -- writes -----------------------------------------------------------------------------

    def put_run(self, entry: IndexEntry, raw_rows: Sequence[RawRow] = ()) -> None:
        """Insert or replace one run with its inputs, outputs and redactions (idempotent)."""
        def write(conn: psycopg.Connection[Any]) -> None:
            known = self._known_raw(conn, raw_rows)
            with conn.pipeline():  # every statement in one round trip, then the commit
                self._put_entries(conn, [entry])
                self._put_raw(conn, raw_rows, known)
        self._write(write)

    def _put_entries(self, conn: psycopg.Connection[Any], entries: Iterable[IndexEntry]) -> None:
        upsert_run = self._upsert("runs")
        insert_io = self._upsert("io", columns=True)
        insert_redaction = self._upsert("redactions")
        with conn.cursor() as cur:
            for entry in entries:
                run_id = entry.run.run_id
                # the run's row first: a second writer of the same run waits here
                cur.execute(upsert_run, tuple(entry.run.__dict__.values()))
                cur.execute(self._q("DELETE FROM {s}.io WHERE run_id = %s"), (run_id,))
                cur.execute(self._q("DELETE FROM {s}.redactions WHERE run_id = %s"), (run_id,))
                if entry.files:  # one statement for all of them, not one per row
                    rows = list(_unique((tuple(f.__dict__.values()) for f in entry.files),
                                        (1, 2)))
                    cur.execute(insert_io, [list(column) for column in zip(*rows, strict=True)])
                if entry.redactions:
                    cur.executemany(insert_redaction,
                                    [tuple(r.__dict__.values()) for r in entry.redactions])

    def _upsert(self, table: str, *, only_changed: bool = False,
                columns: bool = False) -> sql.Composed:
        """An upsert of one row, or (``columns``) of many given as one array per column."""
        cols = _COLUMNS[table]
        keys = _KEYS[table]
        rest = [c for c in cols if c not in keys]
        source = (sql.SQL("SELECT * FROM unnest({})").format(sql.SQL(", ").join(
            sql.SQL("%s::{}[]").format(sql.SQL(_TYPES.get(c, "text"))) for c in cols))
            if columns else sql.SQL("VALUES ({})").format(
                sql.SQL(", ").join(sql.Placeholder() * len(cols))))
        text = sql.SQL("INSERT INTO {s}.{t} ({cols}) {source} ON CONFLICT ({keys})"
                       " DO UPDATE SET {sets}").format(
            s=self._s, t=sql.Identifier(table),
            cols=sql.SQL(", ").join(map(sql.Identifier, cols)),
            source=source,
            keys=sql.SQL(", ").join(map(sql.Identifier, keys)),
            sets=sql.SQL(", ").join(sql.SQL("{c} = excluded.{c}").format(c=sql.Identifier(c))
                                    for c in rest))
        if only_changed:  # an unchanged row is neither written nor locked
            text = sql.Composed([text, sql.SQL(" WHERE ({old}) IS DISTINCT FROM ({new})").format(
                old=sql.SQL(", ").join(sql.SQL("{t}.{c}").format(t=sql.Identifier(table),
                                                                 c=sql.Identifier(c))
                                       for c in rest),
                new=sql.SQL(", ").join(sql.SQL("excluded.{c}").format(c=sql.Identifier(c))
                                       for c in rest))])
        return text

    def put_raw(self, rows: Sequence[RawRow], *, replace_all: bool = False) -> None:
        def write(conn: psycopg.Connection[Any]) -> None:
            if replace_all:
                conn.execute(self._q("DELETE FROM {s}.raw"))
            self._put_raw(conn, rows, set() if replace_all else self._known_raw(conn, rows))
        self._write(write)

    def _known_raw(self, conn: psycopg.Connection[Any],
                   rows: Sequence[RawRow]) -> set[tuple[Any, ...]]:
        """The raw rows already indexed exactly as given."""
        if not rows:
            return set()
        return {tuple(r) for r in conn.execute(
            self._q(f"SELECT {_cols('raw')} FROM {{s}}.raw WHERE path = ANY(%s)"),
            (sorted({r.path for r in rows}),))}

    def _put_raw(self, conn: psycopg.Connection[Any], rows: Sequence[RawRow],
                 known: set[tuple[Any, ...]]) -> None:
        """Raw rows are shared by every run that reads the file: insert the new ones, and
        touch an existing one only when it changed, so writers do not queue on it."""
        latest = {r.path: r for r in rows}  # the last one wins, as INSERT OR REPLACE does
        changed = [v for v in (tuple(latest[p].__dict__.values()) for p in sorted(latest))
                   if v not in known]
        if changed:
            with conn.cursor() as cur:
                cur.executemany(self._upsert("raw", only_changed=True), changed)

    def put_promotions(self, rows: Sequence[PromotionRow]) -> None:
        """Write promotion rows, one family at a time under its advisory lock."""
        def write(conn: psycopg.Connection[Any]) -> None:
            for family in sorted({r.family for r in rows}):
                self._lock_family(conn, family)
            with conn.cursor() as cur:
                cur.executemany(self._upsert("promotions"),
                                [tuple(r.__dict__.values()) for r in rows])
        if rows:
            self._write(write)

    def family_lock_key(self, family: str) -> str:
        """The advisory lock (hashed) that promotions of ``family`` in this lake take."""
        return f"kfm-prov promote {self.schema}/{family}"

    def _lock_family(self, conn: psycopg.Connection[Any], family: str) -> None:
        """Serialise promotions of one family of this lake (held until commit)."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                     (self.family_lock_key(family),))

    def delete_run(self, run_id: str) -> None:
        def write(conn: psycopg.Connection[Any]) -> None:
            for table in ("io", "redactions", "runs"):
                conn.execute(sql.SQL("DELETE FROM {s}.{t} WHERE run_id = %s").format(
                    s=self._s, t=sql.Identifier(table)), (run_id,))
        self._write(write)

    def replace_all(self, read: Callable[[Mapping[str, IndexedRun]], Snapshot]) -> Snapshot:
        """Swap the whole content in one transaction (``index rebuild``).

        ``read`` is called once writers are held off, with the runs indexed now, so the
        caller can reconcile what changed since it scanned the files; what it returns is
        copied into fresh tables that replace the old ones at the commit.
        """
        with self.transaction() as conn:
            snapshot = read(self._indexed_runs(conn))
            self._replace_rows(conn, *snapshot)
            conn.execute(self._q("INSERT INTO {s}.meta VALUES ('built', '1')"
                                 " ON CONFLICT (key) DO NOTHING"))
        return snapshot

    def _indexed_runs(self, conn: psycopg.Connection[Any]) -> dict[str, IndexedRun]:
        """Run id → (evidence digest, run dir), with every writer of this lake held off
        until the commit (readers go on)."""
        conn.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
                     (self._lake_key(),))
        self._lock_tables(conn)
        return {r[0]: IndexedRun(r[1], r[2]) for r in conn.execute(
            self._q("SELECT run_id, evidence_digest, run_dir FROM {s}.runs"))}

    def _lock_tables(self, conn: psycopg.Connection[Any]) -> None:
        conn.execute(sql.SQL("LOCK TABLE {} IN EXCLUSIVE MODE").format(
            sql.SQL(", ").join(sql.SQL("{s}.{t}").format(s=self._s, t=sql.Identifier(t))
                               for t in TABLES)))

    def _replace_rows(self, conn: psycopg.Connection[Any], entries: Sequence[IndexEntry],
                      raw_rows: Sequence[RawRow], promotions: Sequence[PromotionRow]) -> None:
        """COPY into fresh tables, key and index them, then drop the old ones and rename
        the new ones into place.

        Writers wait (``EXCLUSIVE``) from the start; readers see the old rows until the
        commit, and wait only for the final swap.
        """
        self._lock_tables(conn)
        suffix = "_new"
        for table in TABLES:
            conn.execute(self._q(f"DROP TABLE IF EXISTS {{s}}.{table}{suffix}"))
            conn.execute(self._q(f"CREATE TABLE {{s}}.{table}{suffix}"
                                 f" (LIKE {{s}}.{table} INCLUDING DEFAULTS"
                                 " INCLUDING CONSTRAINTS)"))

        def copy(table: str, rows: Iterable[tuple[Any, ...]]) -> None:
            statement = sql.SQL("COPY {s}.{t} ({cols}) FROM STDIN").format(
                s=self._s, t=sql.Identifier(table + suffix),
                cols=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS[table])))
            with conn.cursor() as cur, cur.copy(statement) as pipe:
                for row in rows:
                    pipe.write_row(row)

        latest = {e.run.run_id: e for e in entries}  # the last one wins, as in SQLite
        copy("runs", (tuple(e.run.__dict__.values()) for e in latest.values()))
        copy("io", (row for e in latest.values() for row in _unique(
            (tuple(f.__dict__.values()) for f in e.files), (1, 2))))
        copy("redactions", (row for e in latest.values() for row in _unique(
            (tuple(r.__dict__.values()) for r in e.redactions), (2,))))
        copy("raw", _unique((tuple(r.__dict__.values()) for r in raw_rows), (0,)))
        copy("promotions", _unique((tuple(r.__dict__.values()) for r in promotions),
                                   (0, 1, 3)))
        # the keys and indexes after the rows: one sort each instead of a million inserts
        for table in TABLES:
            conn.execute(self._q(f"DROP TABLE {{s}}.{table}"))
            conn.execute(self._q(f"ALTER TABLE {{s}}.{table}{suffix} RENAME TO {table}"))
            keys = ", ".join(_KEYS[table])
            conn.execute(self._q(f"ALTER TABLE {{s}}.{table} ADD PRIMARY KEY ({keys})"))
        conn.execute(self._q("CREATE INDEX runs_by_family ON {s}.runs (family, started_at)"))
        conn.execute(self._q("CREATE INDEX io_by_digest ON {s}.io (digest, direction)"))
        conn.execute(self._q("CREATE INDEX raw_by_digest ON {s}.raw (digest)"))
        conn.execute(self._q("CREATE INDEX promotions_by_digest ON {s}.promotions (digest)"))
        conn.execute(self._q("CREATE INDEX promotions_by_run ON {s}.promotions (run_id)"))

    # -- reads ------------------------------------------------------------------------------

    def run(self, run_id: str) -> RunRow | None:
        rows = self._fetch(f"SELECT {_cols('runs')} FROM {{s}}.runs WHERE run_id = %s",
                           (run_id,))
        return RunRow(*rows[0]) if rows else None

    def resolve_run(self, text: str) -> RunRow:
        """A run by its id or a unique prefix of at least 6 characters (any case)."""
        return resolve_run(self, text)

    def runs(self, family: str | None = None) -> list[RunRow]:
        if family is None:
            rows = self._fetch(f"SELECT {_cols('runs')} FROM {{s}}.runs"
                               " ORDER BY started_at, run_id")
        else:
            rows = self._fetch(f"SELECT {_cols('runs')} FROM {{s}}.runs WHERE family = %s"
                               " ORDER BY started_at, run_id", (family,))
        return [RunRow(*r) for r in rows]

    def runs_by_id(self, run_ids: Sequence[str]) -> dict[str, RunRow]:
        return {row[0]: RunRow(*row) for row in self._any(
            f"SELECT {_cols('runs')} FROM {{s}}.runs WHERE run_id = ANY(%s) ORDER BY run_id",
            run_ids)}

    def files(self, run_ids: Sequence[str], direction: str | None = None) -> list[IoRow]:
        rows = [IoRow(*r) for r in self._any(
            f"SELECT {_cols('io')} FROM {{s}}.io WHERE run_id = ANY(%s)", run_ids)]
        if direction is not None:
            rows = [r for r in rows if r.direction == direction]
        return sorted(rows, key=lambda r: (r.run_id, r.direction, r.path))

    def producers(self, digests: Sequence[str]) -> list[IoRow]:
        """Outputs of any run with these digests: the join that makes lineage."""
        return [IoRow(*r) for r in self._any(
            f"SELECT {_cols('io')} FROM {{s}}.io WHERE direction = 'out' AND digest = ANY(%s)"
            " ORDER BY digest, run_id, path", digests)]

    def consumers(self, digests: Sequence[str]) -> list[IoRow]:
        return [IoRow(*r) for r in self._any(
            f"SELECT {_cols('io')} FROM {{s}}.io WHERE direction = 'in' AND digest = ANY(%s)"
            " ORDER BY digest, run_id, path", digests)]

    def raw_by_digest(self, digests: Sequence[str]) -> list[RawRow]:
        return [RawRow(*r) for r in self._any(
            f"SELECT {_cols('raw')} FROM {{s}}.raw WHERE digest = ANY(%s) ORDER BY digest, path",
            digests)]

    def raw_by_path(self, paths: Sequence[str]) -> list[RawRow]:
        return [RawRow(*r) for r in self._any(
            f"SELECT {_cols('raw')} FROM {{s}}.raw WHERE path = ANY(%s) ORDER BY path", paths)]

    def all_raw(self) -> list[RawRow]:
        return [RawRow(*r) for r in self._fetch(
            f"SELECT {_cols('raw')} FROM {{s}}.raw ORDER BY path")]

    def promotions(self, family: str | None = None) -> list[PromotionRow]:
        if family is None:
            rows = self._fetch(f"SELECT {_cols('promotions')} FROM {{s}}.promotions"
                               " ORDER BY family, version, path")
        else:
            rows = self._fetch(f"SELECT {_cols('promotions')} FROM {{s}}.promotions"
                               " WHERE family = %s ORDER BY version, path", (family,))
        return [PromotionRow(*r) for r in rows]

    def promotions_by_digest(self, digests: Sequence[str]) -> list[PromotionRow]:
        return [PromotionRow(*r) for r in self._any(
            f"SELECT {_cols('promotions')} FROM {{s}}.promotions WHERE digest = ANY(%s)"
            " ORDER BY digest, family, version, path", digests)]

    def orphans(self) -> list[IoRow]:
        """Inputs that no run produced, that are no recorded raw file and were never promoted."""
        return [IoRow(*r) for r in self._fetch(
            f"SELECT {_cols('io', 'i')} FROM {{s}}.io AS i WHERE direction = 'in'"
            " AND NOT EXISTS (SELECT 1 FROM {s}.io AS o WHERE o.direction = 'out'"
            "                 AND o.digest = i.digest)"
            " AND NOT EXISTS (SELECT 1 FROM {s}.raw AS r WHERE r.digest = i.digest)"
            " AND NOT EXISTS (SELECT 1 FROM {s}.promotions AS p WHERE p.digest = i.digest)"
            " ORDER BY run_id, path")]

    def upstream_runs(self, run_id: str) -> list[str]:
        return [r[0] for r in self._fetch(
            "SELECT DISTINCT o.run_id FROM {s}.io AS i JOIN {s}.io AS o ON o.digest = i.digest"
            " AND o.direction = 'out' WHERE i.run_id = %s AND i.direction = 'in'"
            " AND o.run_id != i.run_id ORDER BY o.run_id", (run_id,))]

    def closure_runs(self, runs: Sequence[str] = (), digests: Sequence[str] = (), *,
                     upstream: bool = True, limit: int = 20_000) -> list[str] | None:
        """See ``LineageIndex.closure_runs``: the same set, in one recursive query."""
        near, far = ("in", "out") if upstream else ("out", "in")
        rows = self._fetch(
            "WITH RECURSIVE seed(run_id) AS ("
            "   SELECT unnest(%(runs)s::text[])"
            "   UNION SELECT f.run_id FROM {s}.io AS f WHERE f.direction = %(far)s"
            "   AND f.digest = ANY(%(digests)s::text[])),"
            " walk(run_id) AS ("
            "   SELECT run_id FROM seed"
            "   UNION SELECT b.run_id FROM walk"
            "   JOIN {s}.io AS a ON a.run_id = walk.run_id AND a.direction = %(near)s"
            "   JOIN {s}.io AS b ON b.digest = a.digest AND b.direction = %(far)s)"
            " SELECT run_id FROM walk LIMIT %(limit)s",
            {"runs": list(runs), "digests": list(digests), "near": near, "far": far,
             "limit": limit + 1})
        if len(rows) > limit:
            return None
        return [r[0] for r in rows]

    def redactions(self, run_ids: Sequence[str]) -> list[RedactionRow]:
        return [RedactionRow(*r) for r in self._any(
            f"SELECT {_cols('redactions')} FROM {{s}}.redactions WHERE run_id = ANY(%s)"
            " ORDER BY run_id, output", run_ids)]

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row of every table, sorted: two indexes that answer alike dump alike."""
        return {table: sorted(self._fetch(f"SELECT {_cols(table)} FROM {{s}}.{table}"),
                              key=repr)
                for table in TABLES}

    def _any(self, text: str, values: Sequence[str]) -> list[tuple[Any, ...]]:
        unique = list(dict.fromkeys(values))
        if not unique:
            return []
        return self._fetch(text, (unique,))

    # -- administration ---------------------------------------------------------------------

    def stats(self) -> IndexStats:
        """Size and row counts of this lake's schema."""
        def read(conn: psycopg.Connection[Any]) -> IndexStats:
            size = conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class AS c"
                " JOIN pg_namespace AS n ON n.oid = c.relnamespace"
                " WHERE n.nspname = %s AND c.relkind = 'r'", (self.schema,)).fetchone()
            rows = {}
            for table in TABLES:
                count = conn.execute(self._q(f"SELECT count(*) FROM {{s}}.{table}")).fetchone()
                rows[table] = int(count[0]) if count else 0
            return IndexStats("postgresql", self.location, self.schema,
                              str(self._version(conn) or 0), int(size[0]) if size else 0, rows)
        return self._retry(read, transaction=False)  # no table held while another is read

    def drop(self) -> None:
        """Remove this lake's schema and everything in it."""
        self._retry(lambda conn: conn.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(self._s)))
        self._opened = False


def _cols(table: str, alias: str | None = None) -> str:
    prefix = f"{alias}." if alias else ""
    return ", ".join(prefix + c for c in _COLUMNS[table])


def _unique(rows: Iterable[tuple[Any, ...]], key: tuple[int, ...]) -> Iterator[tuple[Any, ...]]:
    """The last row for each key, as ``INSERT OR REPLACE`` would keep (COPY has no upsert)."""
    latest: dict[tuple[Any, ...], tuple[Any, ...]] = {}
    for row in rows:
        latest[tuple(row[k] for k in key)] = row
    return iter(latest.values())
