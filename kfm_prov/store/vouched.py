"""Runs a full check vouched for, so ``index rebuild`` need not check them again.

Rebuilding the index of a large lake spends most of its Python on each run's schema
check and secrets scan. Both depend only on the run's evidence bytes and on the rules:
a run whose evidence digest (hashed fresh, every time), checker version and scanner
version are those recorded here when it was last fully checked gets the same answer, so
``rebuild`` takes the recorded secrets count and parses its receipts without the schema
check. The versions are digests of the code and schemas that decide, so a change of rules
(a new secret detector, a schema) re-checks every run. ``index rebuild --full`` ignores
this file. The gate never reads it: it re-reads and re-checks every run it relies on.
"""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Iterable
from importlib import resources

from kfm_prov.config import LakeConfig
from kfm_prov.store.dbutil import begin_immediate, connect, retry_locked

VOUCHED_FILE = "vouched.sqlite"

#: What decides a run's schema check, and what decides its secrets scan.
_CHECKER = ("core/validation.py", "core/fastschema.py", "store/receipts.py")
_SCANNER = ("core/secrets.py", "store/evidence.py")


def _digest_of(parts: Iterable[str]) -> str:
    package = resources.files("kfm_prov")
    digest = hashlib.sha256()
    for part in parts:
        entry = package.joinpath(*part.split("/"))
        digest.update(part.encode() + b"\0" + entry.read_bytes() + b"\0")
    return digest.hexdigest()


@functools.cache
def versions() -> tuple[str, str]:
    """(checker version, scanner version): digests of the files whose rules decide."""
    schemas = sorted(f"schemas/{e.name}" for e in resources.files("kfm_prov")
                     .joinpath("schemas").iterdir() if e.name.endswith(".json"))
    return _digest_of([*_CHECKER, *schemas]), _digest_of(_SCANNER)


def _connect(config: LakeConfig):  # type: ignore[no-untyped-def]
    conn = connect(config.dir("cache") / VOUCHED_FILE)
    retry_locked(lambda: conn.execute(
        "CREATE TABLE IF NOT EXISTS vouched (run_dir TEXT PRIMARY KEY, evidence TEXT NOT NULL,"
        " checker TEXT NOT NULL, scanner TEXT NOT NULL, secrets INT NOT NULL) WITHOUT ROWID"))
    return conn


def vouched_runs(config: LakeConfig) -> dict[str, tuple[str, int]]:
    """run dir → (evidence digest, secrets found), for runs checked under today's rules."""
    import sqlite3

    checker, scanner = versions()
    try:
        conn = _connect(config)
    except sqlite3.Error:
        return {}  # a cache: unreadable means check everything
    try:
        rows = conn.execute("SELECT run_dir, evidence, secrets FROM vouched WHERE checker = ?"
                            " AND scanner = ?", (checker, scanner)).fetchall()
    except sqlite3.Error:
        return {}
    finally:
        conn.close()
    return {run_dir: (evidence, secrets) for run_dir, evidence, secrets in rows}


def vouch(config: LakeConfig, rows: Iterable[tuple[str, str, int]]) -> None:
    """Record (run dir, evidence digest, secrets) of runs just checked in full."""
    checker, scanner = versions()
    conn = _connect(config)
    try:
        begin_immediate(conn)
        try:
            conn.executemany("INSERT OR REPLACE INTO vouched VALUES (?, ?, ?, ?, ?)",
                             [(d, e, checker, scanner, s) for d, e, s in rows])
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")
    finally:
        conn.close()
