"""Opening the lake's index, and rebuilding it from the files (which are the truth).

The index is a cache: ``index_for`` opens it and rebuilds it when it is new or of an old
schema; ``rebuild_index`` recreates it from run receipts, raw manifests and certificates.
Every command opens the index through here and few rebuild it, so what only a rebuild
reads (receipts, evidence, manifests, certificates) is imported by the functions that
read it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfm_prov.config import LakeConfig
from kfm_prov.core.findings import Finding
from kfm_prov.core.perf import gc_paused
from kfm_prov.errors import InputError, KfmProvError
from kfm_prov.store.digests import default_workers
from kfm_prov.store.index import (
    IndexedRun,
    IndexEntry,
    IoRow,
    LineageIndex,
    RawRow,
    RedactionRow,
    RunRow,
    Snapshot,
)
from kfm_prov.store.protocol import LineageStore

Vouched = Mapping[str, tuple[str, int]]  # run dir → (evidence digest, secrets) checked before


def backend_for(config: LakeConfig) -> LineageStore:
    """The lake's index, unopened: the one place that chooses its backend.

    SQLite under the cache directory unless ``[index] url`` (or ``$KFM_PROV_INDEX_URL``)
    names a PostgreSQL database; psycopg is imported only then.
    """
    if config.index.url is None:
        return LineageIndex(config.dir("cache") / "lineage.sqlite")
    return postgres_index(config, config.index.url)


def postgres_index(config: LakeConfig, url: str) -> LineageStore:
    """The lake's index in the PostgreSQL database at ``url`` (also ``index migrate --to``)."""
    try:
        from kfm_prov.store.postgres import PgLineageIndex
    except ImportError:
        raise InputError("a PostgreSQL index needs psycopg: pip install 'kfm-prov[postgres]'",
                         file="kfm-prov.toml", field="index.url") from None
    password_file = None
    if config.index.password_file is not None:
        password_file = Path(config.index.password_file).expanduser()
        if not password_file.is_absolute():
            password_file = config.root / password_file
    return PgLineageIndex(url, config.lake_name(), password_file=password_file)


def index_for(config: LakeConfig) -> LineageStore:
    """The lake's index, rebuilt from the files first if it is new or of an old schema."""
    index = backend_for(config)
    if index.needs_rebuild():
        rebuild_index(config, index)
    return index


@dataclass(frozen=True)
class RebuildResult:
    runs: int
    raw_files: int
    skipped: list[Finding]


def _reconcile(config: LakeConfig, indexed: Mapping[str, IndexedRun],
               entries: list[IndexEntry]) -> list[IndexEntry]:
    """Under the index's write lock: the scanned runs, corrected for what changed since.

    A run indexed while the scan ran (absent from it, or with other evidence) is read
    again from disk; a run whose directory went away (gc) is dropped.
    """
    scanned = {e.run.run_id: e for e in entries}
    result = []
    for run_id in sorted(set(scanned) | set(indexed)):
        entry = scanned.get(run_id)
        run_dir = entry.run.run_dir if entry is not None else indexed[run_id].run_dir
        if not (config.root / run_dir / "run_record.json").is_file():
            continue
        if run_id in indexed and (entry is None or
                                  entry.run.evidence_digest != indexed[run_id].evidence_digest):
            again = _read_chunk(config, [run_dir], {})[0]
            if not again or again[0].run.run_id != run_id:
                continue
            entry = again[0]
        if entry is not None:
            result.append(entry)
    return result


_PARALLEL_RUNS = 2000  # below this, starting worker processes costs more than it saves
_CHUNK_RUNS = 250


@gc_paused  # a lake's entries all stay alive until written: see perf.paused_gc
def read_runs(config: LakeConfig, run_dirs: Sequence[str], *, workers: int | None = None,
              vouched: Vouched | None = None) -> tuple[list[IndexEntry], list[Finding]]:
    """Index entries of run directories read from disk, and the runs that could not be.

    Each run costs its receipts' parsing and schema check, a fresh hash of its evidence
    and a secrets scan: about a millisecond of Python. A large lake is read by one
    process per core, in chunks, in order; the result is the same as reading the runs one
    by one here. The workers are forked (``spawn`` would re-run the caller's ``__main__``,
    which fails for a script read from stdin), and only from a process with no other
    thread, which is what makes forking safe; otherwise the runs are read here.

    A run in ``vouched`` whose evidence digest (hashed fresh) is the one recorded there
    skips the schema check and the secrets scan (see ``store/vouched.py``).
    """
    import threading

    workers = workers or default_workers()
    if workers < 2 or len(run_dirs) < _PARALLEL_RUNS or threading.active_count() > 1:
        return _read_chunk(config, run_dirs, vouched or {})
    import multiprocessing

    vouched = vouched or {}
    chunks = [(config, part, {d: vouched[d] for d in part if d in vouched})
              for k in range(0, len(run_dirs), _CHUNK_RUNS)
              for part in [run_dirs[k:k + _CHUNK_RUNS]]]
    entries: list[IndexEntry] = []
    skipped: list[Finding] = []
    with multiprocessing.get_context("fork").Pool(workers) as pool:
        for packed, chunk_skipped in pool.imap(_read_packed_chunk, chunks):
            entries += [IndexEntry(run, _PackedRows(run.run_id, blob), redactions)
                        for run, blob, redactions in packed]
            skipped += chunk_skipped
    return entries, skipped


class _PackedRows(Sequence[IoRow]):
    """A run's io rows kept as one ``marshal`` blob until they are written.

    A million ``IoRow`` objects take ~700 MiB; the same rows packed take a third of that,
    and are unpacked one run at a time as ``put_entries`` writes them.
    """

    __slots__ = ("_blob", "_run_id")

    def __init__(self, run_id: str, blob: bytes) -> None:
        self._run_id = run_id
        self._blob = blob

    def _rows(self) -> list[IoRow]:
        import marshal

        return [IoRow(self._run_id, *fields) for fields in marshal.loads(self._blob)]

    def __iter__(self) -> Iterator[IoRow]:
        return iter(self._rows())

    def __len__(self) -> int:
        return len(self._rows())

    def __getitem__(self, index: Any) -> Any:
        return self._rows()[index]


def _read_packed_chunk(args: tuple[LakeConfig, Sequence[str], Vouched],
                       ) -> tuple[list[tuple[RunRow, bytes, Sequence[RedactionRow]]],
                                  list[Finding]]:
    """A worker's share: entries with their io rows packed (see ``_PackedRows``)."""
    import marshal

    entries, skipped = _read_chunk(*args)
    packed = [(e.run, marshal.dumps([tuple(f.__dict__.values())[1:] for f in e.files]),
               e.redactions) for e in entries]
    return packed, skipped


def _read_chunk(config: LakeConfig, run_dirs: Sequence[str], vouched: Vouched,
                ) -> tuple[list[IndexEntry], list[Finding]]:
    """Index entries of runs, each file read once (``read_evidence``), in one batch.

    A run vouched for with the digest its files have now keeps its recorded secrets count
    and skips the schema check and the scan; any other is checked and scanned from the
    bytes that were hashed. One run that cannot be read is a finding, never the end: a
    batch that fails is read again one run at a time to say which.
    """
    from kfm_prov.store.evidence import index_entry, read_evidence, scan_evidence

    try:
        evidence = read_evidence(config, run_dirs,
                                 vouched={d: v[0] for d, v in vouched.items()})
    except (OSError, KfmProvError) as exc:
        if len(run_dirs) > 1:
            entries: list[IndexEntry] = []
            skipped: list[Finding] = []
            for run_dir in run_dirs:
                found, missed = _read_chunk(config, [run_dir], vouched)
                entries += found
                skipped += missed
            return entries, skipped
        if isinstance(exc, InputError):
            return [], [Finding("run-not-indexed", exc.message, exc.file, exc.field)]
        reason = exc.strerror if isinstance(exc, OSError) else str(exc)
        return [], [Finding("run-not-indexed", f"cannot read the run: {reason}", run_dirs[0])]
    entries = []
    skipped = []
    for run_dir in run_dirs:
        ev = evidence[run_dir]
        if ev.findings or ev.receipts is None:
            first = ev.findings[0]
            skipped.append(Finding("run-not-indexed", first.message, first.file, first.pointer))
            continue
        if ev.vouched:
            secrets = vouched[run_dir][1]
        else:
            secrets = len(scan_evidence(config, run_dir, ev.datas, list(ev.files),
                                        blobs=ev.blobs))
        entries.append(index_entry(config, ev.receipts, run_dir, evidence=ev.digest,
                                   secrets=secrets))
    return entries, skipped


def iter_run_dirs(config: LakeConfig) -> list[str]:
    """Root-relative directories under ``runs/<family>/`` that hold a run record."""
    runs_dir = config.dir("runs")
    if not runs_dir.is_dir():
        return []
    return sorted(path.parent.relative_to(config.root).as_posix()
                  for path in runs_dir.glob("*/*/run_record.json"))


def rebuild_index(config: LakeConfig, index: LineageStore | None = None, *,
                  full: bool = False) -> RebuildResult:
    """Recreate the lineage index from run receipts and raw manifests.

    Runs whose receipts are incomplete (still running, killed before the end) or invalid
    are skipped and reported; the index is replaced in one transaction. The runs are read
    (and their evidence hashed) before that transaction; runs indexed or removed by other
    processes meanwhile are reconciled inside it, so a concurrent ``kfm-prov run``, ``gc``
    or ``raw add`` is never undone.

    Runs vouched for under today's rules with the same evidence are not schema-checked
    and scanned again (``store/vouched.py``); ``full`` checks every run.
    """
    from kfm_prov.store import raw
    from kfm_prov.store.published import promotion_rows
    from kfm_prov.store.vouched import vouched_runs

    entries, skipped = read_runs(config, iter_run_dirs(config),
                                 vouched=None if full else vouched_runs(config))

    def read(indexed: Mapping[str, IndexedRun]) -> Snapshot:
        raw_rows: list[RawRow] = []
        for item in raw.iter_recorded(config):
            if isinstance(item, Finding):
                skipped.append(item)
            else:
                raw_rows.append(RawRow(item.path, item.digest, item.license,
                                       item.attribution, item.sensitivity, item.manifest))
        return _reconcile(config, indexed, entries), raw_rows, promotion_rows(config)

    target = index or backend_for(config)
    try:
        written, raw_rows, _ = target.replace_all(read)
    finally:
        if index is None:
            target.close()
    _vouch(config, written)
    return RebuildResult(len(written), len(raw_rows), skipped)


def _vouch(config: LakeConfig, written: Sequence[IndexEntry]) -> None:
    """Every run just indexed was checked in full, or vouched for with this evidence."""
    import contextlib
    import sqlite3

    from kfm_prov.store.vouched import vouch

    with contextlib.suppress(sqlite3.Error, OSError):  # a cache: the next rebuild checks all
        vouch(config, [(e.run.run_dir, e.run.evidence_digest, e.run.secrets) for e in written])
