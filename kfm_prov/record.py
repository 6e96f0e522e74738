"""Taking a finished run into the lake: its PROV document and its index entry.

``publish_run`` is the last step of every way a run arrives (``capture``, ``kfm-prov run``,
``kfm-prov record``), so all three end in the same ``prov.json`` and index rows.
``record_run_dir`` is the trust boundary for receipts a pipeline wrote itself: it
validates them, re-hashes every file they name and refuses on any mismatch or secret.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.paths import check_relative, is_under, resolve_inside, symlink_on_the_way
from kfm_prov.errors import CheckFailed, InputError
from kfm_prov.prov.document import build_run_prov
from kfm_prov.store.digests import hash_files, sha256_bytes
from kfm_prov.store.evidence import (
    PROV_FILE,
    REPORT_FILE,
    entry_from_disk,
    evidence_files,
    scan_evidence,
)
from kfm_prov.store.index import RawRow
from kfm_prov.store.rebuild import index_for
from kfm_prov.store.receipts import (
    FileEntry,
    RunReceipts,
    check_run_dir,
    load_run_receipts,
    receipt_inconsistencies,
)


@dataclass(frozen=True)
class RecordedRun:
    """A run as it was taken into the lake: where its receipts are and how it ended."""

    run_id: str
    run_dir: str  # root-relative
    status: str
    overall_status: str
    prov: str  # root-relative path of prov.json
    #: Why the run did not succeed, in one line for the terminal (``kfm-prov run``):
    #: the command not found, its exit code or signal, a declared output never written.
    reason: str | None = None


def run_dir_rel(config: LakeConfig, family: str, run_id: str) -> str:
    return f"{config.rel('runs')}/{family}/{run_id}"


def publish_run(config: LakeConfig, run_dir: str, receipts: RunReceipts) -> RecordedRun:
    """Write the run's ``prov.json`` (and, with a signing key, ``run.intoto.jsonl``), index it.

    Mutates only those files and the index.
    """
    from kfm_prov.store.signing import sign_run

    raw_rows = write_run_prov(config, run_dir, receipts)
    sign_run(config, run_dir, receipts, evidence_files(config, run_dir))
    return index_run(config, run_dir, receipts, raw_rows)


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
    entry = entry_from_disk(config, run_dir, receipts)
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
    problems = receipt_inconsistencies(receipts, display=run_dir)
    problems += _digest_mismatches(config, run_dir, receipts) + scan_evidence(
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
