"""SQLite connections for the index and the digest cache, safe for many processes.

WAL with a busy timeout lets writers queue, but SQLite does not call the busy handler in
every case: switching a brand-new file to WAL, or recovering a WAL, while other
processes open it can fail at once with "database is locked". Those steps, and the start
of a write transaction, are retried with a growing, jittered pause for a bounded time.
"""

from __future__ import annotations

import random
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")
LOCK_WAIT_SECONDS = 120.0


def retry_locked(action: Callable[[], T], *, seconds: float = LOCK_WAIT_SECONDS) -> T:
    """``action()``, again while SQLite answers locked or busy, for at most ``seconds``."""
    deadline = time.monotonic() + seconds
    pause = 0.005
    while True:
        try:
            return action()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if ("locked" not in text and "busy" not in text) or time.monotonic() > deadline:
                raise
        time.sleep(pause * (1 + random.random()))
        pause = min(pause * 2, 0.25)


def connect(path: Path, *, shared: bool = False) -> sqlite3.Connection:
    """An autocommit connection in WAL mode; transactions are begun explicitly.

    ``shared``: usable from any thread (the caller serialises its use with a lock).
    """
    path.parent.mkdir(parents=True, exist_ok=True)

    def attempt() -> sqlite3.Connection:
        conn = sqlite3.connect(path, timeout=60, isolation_level=None,
                               check_same_thread=not shared)
        try:
            conn.execute("PRAGMA busy_timeout = 60000")
            if str(conn.execute("PRAGMA journal_mode").fetchone()[0]).lower() != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
            conn.execute("PRAGMA synchronous = NORMAL")
        except BaseException:
            conn.close()
            raise
        return conn

    return retry_locked(attempt)


def begin_immediate(conn: sqlite3.Connection) -> None:
    """Take the write lock now, so a transaction never has to upgrade a read lock."""
    retry_locked(lambda: conn.execute("BEGIN IMMEDIATE"))
