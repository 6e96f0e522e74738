"""``index status`` and ``index migrate``: which index a lake uses, and moving it.

Status compares the index with the files it is a cache of: which runs are on disk but
not indexed (an index write that failed, a run copied in) or indexed but gone, and
whether raw manifests and certificates match their rows. It compares which records
exist, not their bytes: ``check`` and ``verify`` re-hash. Migrate copies rows from the
index in use into another backend; the files are not read again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kfm_prov.config import LakeConfig, parse_index_url
from kfm_prov.core.findings import Finding
from kfm_prov.errors import InputError
from kfm_prov.store.index import IndexedRun, IndexEntry, IndexStats, LineageIndex, Snapshot


@dataclass(frozen=True)
class IndexStatus:
    stats: IndexStats
    runs_on_disk: int
    not_indexed: list[str] = field(default_factory=list)  # run dirs rebuild would add
    gone: list[str] = field(default_factory=list)  # indexed run ids without a run dir
    raw_differs: int = 0  # raw files recorded on disk xor indexed
    promotions_differ: int = 0  # (family, version) certified xor indexed

    @property
    def in_step(self) -> bool:
        return not (self.not_indexed or self.gone or self.raw_differs or self.promotions_differ)

    def to_dict(self) -> dict[str, Any]:
        return {**self.stats.to_dict(), "in_step": self.in_step,
                "runs_on_disk": self.runs_on_disk, "not_indexed": self.not_indexed,
                "gone": self.gone, "raw_differs": self.raw_differs,
                "promotions_differ": self.promotions_differ}


def index_status(config: LakeConfig) -> IndexStatus:
    """The index in use and whether it is in step with the receipts. Reads only."""
    from kfm_prov.store import raw
    from kfm_prov.store.published import promotion_rows
    from kfm_prov.store.rebuild import index_for, iter_run_dirs
    from kfm_prov.store.receipts import load_run_receipts

    with index_for(config) as index:
        stats = index.stats()
        indexed = {r.run_id: r.run_dir for r in index.runs()}
        indexed_raw = {(r.path, r.digest) for r in index.all_raw()}
        indexed_versions = {(p.family, p.version) for p in index.promotions()}
    run_dirs = iter_run_dirs(config)
    by_dir = {run_dir: run_id for run_id, run_dir in indexed.items()}
    not_indexed = []
    for run_dir in run_dirs:
        if run_dir in by_dir:
            continue
        try:  # one that rebuild would skip (still running, broken) is not "missing"
            load_run_receipts(config.root / run_dir, display=run_dir)
        except InputError:
            continue
        not_indexed.append(run_dir)
    gone = sorted(run_id for run_id, run_dir in indexed.items()
                  if not (config.root / run_dir / "run_record.json").is_file())
    on_disk_raw = {(i.path, i.digest) for i in raw.iter_recorded(config)
                   if not isinstance(i, Finding)}
    certified = {(p.family, p.version) for p in promotion_rows(config)}
    return IndexStatus(stats, len(run_dirs), not_indexed, gone,
                       len(on_disk_raw ^ indexed_raw), len(certified ^ indexed_versions))


@dataclass(frozen=True)
class MigrateResult:
    source: IndexStats
    target: IndexStats

    def to_dict(self) -> dict[str, Any]:
        return {"from": self.source.to_dict(), "to": self.target.to_dict()}


def migrate_index(config: LakeConfig, to: str) -> MigrateResult:
    """Copy every row of the index in use into ``to`` (a PostgreSQL URL, or ``sqlite``
    for the file under the cache), replacing what that index held for this lake.

    Mutates only the target index; the configuration is left for the user to change.
    """
    from kfm_prov.store.rebuild import index_for, postgres_index

    url = parse_index_url(to, file="--to")
    target = (LineageIndex(config.dir("cache") / "lineage.sqlite") if url is None
              else postgres_index(config, url))
    with index_for(config) as source:
        before = source.stats()
        if (before.location, before.lake) == _location(target):
            raise InputError("the index is already there", file="--to",
                             hint="see `kfm-prov index status`")
        runs = source.runs()
        ids = [r.run_id for r in runs]
        files: dict[str, list[Any]] = {run_id: [] for run_id in ids}
        for row in source.files(ids):
            files[row.run_id].append(row)
        redactions: dict[str, list[Any]] = {run_id: [] for run_id in ids}
        for red in source.redactions(ids):
            redactions[red.run_id].append(red)
        snapshot: Snapshot = ([IndexEntry(r, files[r.run_id], redactions[r.run_id])
                               for r in runs], source.all_raw(), source.promotions())

    def read(indexed: dict[str, IndexedRun] | Any) -> Snapshot:
        return snapshot

    with target:
        target.needs_rebuild()
        target.replace_all(read)
        after = target.stats()
    return MigrateResult(before, after)


def _location(index: Any) -> tuple[str, str | None]:
    if isinstance(index, LineageIndex):
        return str(index.db_path), None
    return index.location, index.schema
