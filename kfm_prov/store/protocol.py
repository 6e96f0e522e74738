"""``LineageStore``: what the rest of kfm-prov may ask of the lineage index.

The index is a cache that *locates*: which runs made or used a digest, where their
receipts are, which versions were promoted. It never vouches for anything; the gate,
``verify`` and ``trace --verify`` re-read and re-hash the files it points at. Callers
outside ``kfm_prov.store`` see only this protocol, so a backend (SQLite today, a shared
server tomorrow) is chosen in one place, ``store.rebuild.backend_for``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from kfm_prov.store.index import (
    IndexedRun,
    IndexEntry,
    IndexStats,
    IoRow,
    PromotionRow,
    RawRow,
    RedactionRow,
    RunRow,
    Snapshot,
)


class LineageStore(Protocol):
    """Reads and writes of the lineage index. Every write is one transaction."""

    # -- life cycle ---------------------------------------------------------------------
    def needs_rebuild(self) -> bool:
        """Open the store; True when it was just created or reset and must be rebuilt."""
        ...

    def close(self) -> None: ...

    def __enter__(self) -> LineageStore: ...

    def __exit__(self, *exc: object) -> None: ...

    # -- writes -------------------------------------------------------------------------
    def put_run(self, entry: IndexEntry, raw_rows: Sequence[RawRow] = ()) -> None:
        """Insert or replace one run with its files and redactions (idempotent)."""
        ...

    def put_raw(self, rows: Sequence[RawRow], *, replace_all: bool = False) -> None: ...

    def put_promotions(self, rows: Sequence[PromotionRow]) -> None: ...

    def delete_run(self, run_id: str) -> None: ...

    def replace_all(self, read: Callable[[Mapping[str, IndexedRun]], Snapshot]) -> Snapshot:
        """Swap the whole content; ``read`` runs under the write lock (see SQLite's)."""
        ...

    # -- reads --------------------------------------------------------------------------
    def run(self, run_id: str) -> RunRow | None: ...

    def resolve_run(self, text: str) -> RunRow:
        """A run by id or unique prefix; ``NotFoundError``/``InputError`` otherwise."""
        ...

    def runs(self, family: str | None = None) -> list[RunRow]: ...

    def runs_by_id(self, run_ids: Sequence[str]) -> dict[str, RunRow]: ...

    def files(self, run_ids: Sequence[str], direction: str | None = None) -> list[IoRow]: ...

    def producers(self, digests: Sequence[str]) -> list[IoRow]: ...

    def consumers(self, digests: Sequence[str]) -> list[IoRow]: ...

    def raw_by_digest(self, digests: Sequence[str]) -> list[RawRow]: ...

    def raw_by_path(self, paths: Sequence[str]) -> list[RawRow]: ...

    def all_raw(self) -> list[RawRow]: ...

    def promotions(self, family: str | None = None) -> list[PromotionRow]: ...

    def promotions_by_digest(self, digests: Sequence[str]) -> list[PromotionRow]: ...

    def orphans(self) -> list[IoRow]: ...

    def upstream_runs(self, run_id: str) -> list[str]: ...

    def closure_runs(self, runs: Sequence[str] = (), digests: Sequence[str] = (), *,
                     upstream: bool = True, limit: int = 20_000) -> list[str] | None:
        """Runs linked by digest, transitively; None when more than ``limit``."""
        ...

    def redactions(self, run_ids: Sequence[str]) -> list[RedactionRow]: ...

    def dump(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every row, sorted: for tests and ``index status`` comparisons."""
        ...

    def stats(self) -> IndexStats:
        """Backend, location (no credentials), schema version, size and row counts."""
        ...
