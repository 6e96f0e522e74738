"""Taking a finished run into the lake: its PROV document and its index entry.

``publish_run`` is the last step of every way a run arrives (``capture``, ``kfm-prov run``,
``kfm-prov record``), so all three end in the same ``prov.json`` and index rows.
``record_run_dir`` is the trust boundary for receipts a pipeline wrote itself: it
validates them, re-hashes every file they name and refuses on any mismatch or secret.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.mediatypes import media_type
from kfm_prov.core.paths import (
    check_relative,
    is_under,
    resolve_inside,
    symlink_on_the_way,
    walk_tree,
)
from kfm_prov.core.perf import gc_paused
from kfm_prov.errors import CheckFailed, InputError
from kfm_prov.prov.document import FileState, ProvBuilder
from kfm_prov.receipts import FileEntry, RunReceipts, check_run_dir, load_run_receipts
from kfm_prov.store import raw
from kfm_prov.store.digests import default_workers, hash_files, sha256_bytes
from kfm_prov.store.index import IndexEntry, IoRow, LineageIndex, RawRow, RedactionRow, RunRow

PROV_FILE = "prov.json"
REPORT_FILE = "validation_report.json"
RECEIPT_FILES = ("run_record.json", "run_manifest.json", REPORT_FILE)


@dataclass(frozen=True)
class RecordedRun:
    run_id: str
    run_dir: str  # root-relative
    status: str
    overall_status: str
    prov: str  # root-relative path of prov.json


def index_for(config: LakeConfig) -> LineageIndex:
    """The lake's index, rebuilt from the files first if it is new or of an old schema."""
    index = LineageIndex(config.dir("cache") / "lineage.sqlite")
    index.conn  # noqa: B018 - opening it creates or migrates the file and sets ``stale``
    if index.stale:
        rebuild_index(config, index)
        index.stale = False
    return index


def run_dir_rel(config: LakeConfig, family: str, run_id: str) -> str:
    return f"{config.rel('runs')}/{family}/{run_id}"


def _state(config: LakeConfig, entry: FileEntry) -> FileState:
    return FileState(path=entry.path, digest=entry.digest, zone=config.zone_of(entry.path),
                     role=entry.role, size=entry.size,
                     media_type=entry.media_type or media_type(entry.path),
                     sensitivity=entry.extra.get("sensitivity"))


def _raw_state(state: FileState, info: raw.RawInfo) -> FileState:
    return FileState(path=state.path, digest=state.digest, zone="raw", role=state.role,
                     size=state.size, media_type=state.media_type, license=info.license,
                     attribution=info.attribution, sensitivity=info.sensitivity)


def run_states(config: LakeConfig, receipts: RunReceipts,
               raw_infos: dict[str, raw.RawInfo | None] | None = None,
               ) -> tuple[list[FileState], list[FileState], list[RawRow]]:
    """The PROV view of a run's inputs and outputs; raw inputs carry license and label."""
    raw_paths = [e.path for e in receipts.manifest.inputs if config.zone_of(e.path) == "raw"]
    infos = raw_infos if raw_infos is not None else raw.lookup_many(config, raw_paths)
    inputs: list[FileState] = []
    raw_rows: list[RawRow] = []
    for entry in receipts.manifest.inputs:
        state = _state(config, entry)
        info = infos.get(entry.path) if state.zone == "raw" else None
        if info is not None and info.digest == entry.digest:
            state = _raw_state(state, info)
            raw_rows.append(RawRow(info.path, info.digest, info.license, info.attribution,
                                   info.sensitivity, info.manifest))
        inputs.append(state)
    outputs = [_state(config, entry) for entry in receipts.manifest.outputs]
    return inputs, outputs, raw_rows


def report_state(run_dir: str, report_digest: str) -> FileState:
    return FileState(path=f"{run_dir}/{REPORT_FILE}", digest=report_digest, zone="work",
                     role="validation", media_type="application/json")


def build_run_prov(config: LakeConfig, receipts: RunReceipts, run_dir: str,
                   report_digest: str) -> tuple[bytes, list[RawRow]]:
    """PROV-JSON of one run, and the raw rows of the inputs the manifests know."""
    builder = ProvBuilder(config.namespace)
    inputs, outputs, raw_rows = run_states(config, receipts)
    builder.run(receipts, inputs, outputs, report=report_state(run_dir, report_digest),
                publish_user=config.publish_user)
    return builder.serialize(), raw_rows


def evidence_files(config: LakeConfig, run_dir: str) -> list[str]:
    """Root-relative files whose bytes a run's record rests on: receipts, PROV, logs.

    One ``scandir`` of the run directory and of ``logs/`` (the gate asks this of every
    run of a closure): the receipts and ``prov.json`` when they are files (symlinks
    followed), and every regular file under ``logs/`` (symlinks skipped, symlinked
    directories not entered), sorted.
    """
    absolute = config.root / run_dir
    try:
        with os.scandir(absolute) as entries:
            present = {entry.name for entry in entries if entry.is_file()}
    except OSError:
        present = set()
    names = [name for name in (*RECEIPT_FILES, PROV_FILE) if name in present]
    logs = absolute / "logs"
    if logs.is_dir():
        names += sorted(walk_tree(logs, "logs")[0])
    return [f"{run_dir}/{name}" for name in names]


def evidence_digest(config: LakeConfig, rels: list[str]) -> str:
    """One digest over the evidence files, fresh (never from the cache)."""
    return evidence_digests(config, {"": rels})[""]


def evidence_digests(config: LakeConfig, evidence: Mapping[str, list[str]]) -> dict[str, str]:
    """``evidence_digest`` of many runs (key → its files), hashed fresh in one batch."""
    root = os.fspath(config.root)
    rels = [rel for files in evidence.values() for rel in files]
    digests = iter(hash_files([f"{root}/{rel}" for rel in rels]))
    result = {}
    for key, files in evidence.items():
        listing = "".join(f"{next(digests)}  {rel}\n" for rel in files)
        result[key] = sha256_bytes(listing.encode("utf-8"))
    return result


def scan_evidence(config: LakeConfig, run_dir: str, receipts_data: Mapping[str, object],
                  evidence: list[str]) -> list[Finding]:
    """Secrets in the receipts and in every log file of a run (locations only)."""
    from kfm_prov.core.secrets import LineScrubber, find_secrets, scrub_env
    from kfm_prov.core.validation import KINDS

    findings = []
    for kind, data in receipts_data.items():
        found_here = {(f.location, f.kind): f for f in find_secrets(data)}
        environment = data.get("environment") if isinstance(data, dict) else None
        if isinstance(environment, dict):  # the stricter rule for variable names (*_KEY)
            clean = {k: v for k, v in environment.items() if isinstance(v, str)}
            for found in scrub_env(clean, "/environment")[1]:
                found_here.setdefault((found.location, found.kind), found)
        for found in sorted(found_here.values(), key=lambda f: (f.location, f.kind)):
            findings.append(Finding("secret-in-receipt", f"a {found.kind} is written in the"
                                    " receipt", f"{run_dir}/{KINDS[kind][1]}", found.location,
                                    hint="rotate the credential and rewrite the receipt"))
    for rel in evidence:
        if "/logs/" not in rel:
            continue
        scrubber = LineScrubber()  # a private key spans lines
        with open(config.root / rel, encoding="utf-8", errors="replace") as handle:
            for number, line in enumerate(handle, start=1):
                for found in scrubber.scrub(line, f"line {number}")[1]:
                    findings.append(Finding("secret-in-log", f"a {found.kind} is in the log",
                                            rel, found.location,
                                            hint="rotate the credential and scrub the log"))
    return findings


def index_entry(config: LakeConfig, receipts: RunReceipts, run_dir: str, *,
                evidence: str, secrets: int) -> IndexEntry:
    record, manifest = receipts.record, receipts.manifest
    import rfc8785

    run = RunRow(record.run_id, record.dataset_family, record.pipeline_id, record.status,
                 receipts.report.overall_status, record.started_at, record.ended_at,
                 record.git_commit, manifest.spec_hash, run_dir, evidence, secrets)
    files = [IoRow(record.run_id, direction, e.path, e.digest, e.role, config.zone_of(e.path),
                   e.size, e.media_type or media_type(e.path), e.extra.get("sensitivity"))
             for direction, entries in (("in", manifest.inputs), ("out", manifest.outputs))
             for e in entries]
    redactions = [RedactionRow(record.run_id, r["source"], r["output"], r["sensitivity"],
                               rfc8785.dumps(r.get("profile", {})).decode("utf-8"))
                  for r in manifest.redactions or []]
    return IndexEntry(run, files, redactions)


def _entry_from_disk(config: LakeConfig, run_dir: str,
                     receipts: RunReceipts) -> IndexEntry:
    evidence = evidence_files(config, run_dir)
    data = {"run_record": receipts.record.to_dict(), "run_manifest": receipts.manifest.to_dict(),
            "validation_report": receipts.report.to_dict()}
    secrets = scan_evidence(config, run_dir, data, evidence)
    return index_entry(config, receipts, run_dir, evidence=evidence_digest(config, evidence),
                       secrets=len(secrets))


def publish_run(config: LakeConfig, run_dir: str, receipts: RunReceipts) -> RecordedRun:
    """Write the run's ``prov.json`` and index it. Mutates only those two."""
    return index_run(config, run_dir, receipts, write_run_prov(config, run_dir, receipts))


def write_run_prov(config: LakeConfig, run_dir: str, receipts: RunReceipts) -> list[RawRow]:
    """Write ``prov.json`` from the receipts (the report must be on disk already)."""
    absolute = config.root / run_dir
    report_digest = sha256_bytes((absolute / REPORT_FILE).read_bytes())
    document, raw_rows = build_run_prov(config, receipts, run_dir, report_digest)
    jsonio.atomic_write(absolute / PROV_FILE, document)
    return raw_rows


def index_run(config: LakeConfig, run_dir: str, receipts: RunReceipts,
              raw_rows: list[RawRow]) -> RecordedRun:
    """Index a run whose receipts and ``prov.json`` are on disk. Mutates only the index."""
    entry = _entry_from_disk(config, run_dir, receipts)
    with index_for(config) as index:
        index.put_run(entry, raw_rows)
    run = entry.run
    return RecordedRun(run.run_id, run_dir, run.status, run.overall_status,
                       f"{run_dir}/{PROV_FILE}")


# --- receipts written by the pipeline ---------------------------------------------------------

def record_run_dir(config: LakeConfig, run_dir: str) -> RecordedRun:
    """Validate a pipeline-written run, re-hash what it names, then publish it.

    Exit 2 for receipts that do not validate or name unsafe paths; exit 1 (``CheckFailed``)
    when a recorded digest does not match the file or a receipt holds a secret. On any
    refusal nothing is written.
    """
    run_dir = check_relative(run_dir, file=run_dir)
    absolute = resolve_inside(config.root, run_dir, file=run_dir)
    if not absolute.is_dir():
        raise InputError("not a run directory", file=run_dir)
    datas, findings = check_run_dir(absolute, display=run_dir)
    if findings:
        raise InputError.from_findings("receipts do not validate", findings)
    receipts = load_run_receipts(absolute, display=run_dir)
    record = receipts.record
    expected = run_dir_rel(config, record.dataset_family, record.run_id)
    if run_dir != expected:
        raise InputError(f"a run of family {record.dataset_family!r} with id {record.run_id!r}"
                         f" must live in {expected}", file=f"{run_dir}/run_record.json",
                         field="/run_id")
    if record.status == "running":
        raise InputError("the run is still running; record it when it has ended",
                         file=f"{run_dir}/run_record.json", field="/status")
    _check_paths(config, run_dir, receipts)
    problems = _digest_mismatches(config, run_dir, receipts) + scan_evidence(
        config, run_dir, datas, evidence_files(config, run_dir))
    if problems:
        raise CheckFailed.from_findings("refused to record", problems)
    return publish_run(config, run_dir, receipts)


def _check_paths(config: LakeConfig, run_dir: str, receipts: RunReceipts) -> None:
    manifest_file = f"{run_dir}/run_manifest.json"
    for direction, entries in (("inputs", receipts.manifest.inputs),
                               ("outputs", receipts.manifest.outputs)):
        for i, entry in enumerate(entries):
            pointer = f"/{direction}/{i}/path"
            resolve_inside(config.root, entry.path, file=manifest_file, field=pointer)
            if direction == "outputs" and not is_under(entry.path, f"{run_dir}/artifacts"):
                raise InputError(f"outputs must lie under {run_dir}/artifacts/",
                                 file=manifest_file, field=pointer)


def _digest_mismatches(config: LakeConfig, run_dir: str,
                       receipts: RunReceipts) -> list[Finding]:
    manifest_file = f"{run_dir}/run_manifest.json"
    named: list[tuple[str, FileEntry]] = [
        (f"/{direction}/{i}/digest", entry)
        for direction, entries in (("inputs", receipts.manifest.inputs),
                                   ("outputs", receipts.manifest.outputs))
        for i, entry in enumerate(entries)]
    present: list[tuple[str, FileEntry, Path]] = []
    findings: list[Finding] = []
    for pointer, entry in named:
        path = config.root / entry.path
        linked = symlink_on_the_way(config.root, entry.path)
        if linked or not path.is_file():
            what = "a symlink" if linked else "missing"
            findings.append(Finding("missing-file", f"{entry.path} is {what}", manifest_file,
                                    pointer.removesuffix("/digest") + "/path"))
        else:
            present.append((pointer, entry, path))
    digests = hash_files([p for _, _, p in present])
    for (pointer, entry, _), actual in zip(present, digests, strict=True):
        if actual != entry.digest:
            findings.append(Finding("digest-mismatch",
                                    f"{entry.path} has {actual[:19]}…, recorded"
                                    f" {entry.digest[:19]}…", manifest_file, pointer))
    return findings




# --- rebuilding the index from the files --------------------------------------------------------

@dataclass(frozen=True)
class RebuildResult:
    runs: int
    raw_files: int
    skipped: list[Finding]


def _reconcile(config: LakeConfig, conn: Any, entries: list[IndexEntry]) -> list[IndexEntry]:
    """Under the index's write lock: the scanned runs, corrected for what changed since.

    A run indexed while the scan ran (absent from it, or with other evidence) is read
    again from disk; a run whose directory went away (gc) is dropped.
    """
    scanned = {e.run.run_id: e for e in entries}
    indexed = dict(conn.execute("SELECT run_id, evidence_digest FROM runs").fetchall())
    run_dirs = dict(conn.execute("SELECT run_id, run_dir FROM runs").fetchall())
    result = []
    for run_id in sorted(set(scanned) | set(indexed)):
        entry = scanned.get(run_id)
        run_dir = entry.run.run_dir if entry is not None else run_dirs[run_id]
        if not (config.root / run_dir / "run_record.json").is_file():
            continue
        if run_id in indexed and (entry is None or entry.run.evidence_digest != indexed[run_id]):
            try:
                receipts = load_run_receipts(config.root / run_dir, display=run_dir)
            except InputError:
                continue
            if receipts.record.run_id != run_id:
                continue
            entry = _entry_from_disk(config, run_dir, receipts)
        if entry is not None:
            result.append(entry)
    return result


_PARALLEL_RUNS = 2000  # below this, starting worker processes costs more than it saves
_CHUNK_RUNS = 250


@gc_paused  # a lake's entries all stay alive until written: see perf.paused_gc
def read_runs(config: LakeConfig, run_dirs: Sequence[str], *, workers: int | None = None,
              ) -> tuple[list[IndexEntry], list[Finding]]:
    """Index entries of run directories read from disk, and the runs that could not be.

    Each run costs its receipts' parsing and schema check, a fresh hash of its evidence
    and a secrets scan: about a millisecond of Python. A large lake is read by one
    process per core, in chunks, in order; the result is the same as reading the runs one
    by one here. The workers are forked (``spawn`` would re-run the caller's ``__main__``,
    which fails for a script read from stdin), and only from a process with no other
    thread, which is what makes forking safe; otherwise the runs are read here.
    """
    import threading

    workers = workers or default_workers()
    if workers < 2 or len(run_dirs) < _PARALLEL_RUNS or threading.active_count() > 1:
        return _read_chunk(config, run_dirs)
    import multiprocessing

    chunks = [(config, run_dirs[k:k + _CHUNK_RUNS])
              for k in range(0, len(run_dirs), _CHUNK_RUNS)]
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


def _read_packed_chunk(args: tuple[LakeConfig, Sequence[str]],
                       ) -> tuple[list[tuple[RunRow, bytes, Sequence[RedactionRow]]],
                                  list[Finding]]:
    """A worker's share: entries with their io rows packed (see ``_PackedRows``)."""
    import marshal

    entries, skipped = _read_chunk(*args)
    packed = [(e.run, marshal.dumps([tuple(f.__dict__.values())[1:] for f in e.files]),
               e.redactions) for e in entries]
    return packed, skipped


def _read_chunk(config: LakeConfig, run_dirs: Sequence[str],
                ) -> tuple[list[IndexEntry], list[Finding]]:
    entries: list[IndexEntry] = []
    skipped: list[Finding] = []
    for run_dir in run_dirs:
        try:
            receipts = load_run_receipts(config.root / run_dir, display=run_dir)
        except InputError as exc:
            skipped.append(Finding("run-not-indexed", exc.message, exc.file, exc.field))
            continue
        entries.append(_entry_from_disk(config, run_dir, receipts))
    return entries, skipped


def iter_run_dirs(config: LakeConfig) -> list[str]:
    """Root-relative directories under ``runs/<family>/`` that hold a run record."""
    runs_dir = config.dir("runs")
    if not runs_dir.is_dir():
        return []
    return sorted(path.parent.relative_to(config.root).as_posix()
                  for path in runs_dir.glob("*/*/run_record.json"))


def rebuild_index(config: LakeConfig, index: LineageIndex | None = None) -> RebuildResult:
    """Recreate the lineage index from run receipts and raw manifests.

    Runs whose receipts are incomplete (still running, killed before the end) or invalid
    are skipped and reported; the index is replaced in one transaction. The runs are read
    (and their evidence hashed) before that transaction; runs indexed or removed by other
    processes meanwhile are reconciled inside it, so a concurrent ``kfm-prov run``, ``gc``
    or ``raw add`` is never undone.
    """
    entries, skipped = read_runs(config, iter_run_dirs(config))
    from kfm_prov.publish.promote import promotion_rows

    target = index or LineageIndex(config.dir("cache") / "lineage.sqlite")
    try:
        with target.transaction() as conn:
            entries = _reconcile(config, conn, entries)
            raw_rows: list[RawRow] = []
            for item in raw.iter_recorded(config):
                if isinstance(item, Finding):
                    skipped.append(item)
                else:
                    raw_rows.append(RawRow(item.path, item.digest, item.license,
                                           item.attribution, item.sensitivity, item.manifest))
            LineageIndex.replace_rows(conn, entries, raw_rows, promotion_rows(config))
    finally:
        if index is None:
            target.close()
    return RebuildResult(len(entries), len(raw_rows), skipped)
