"""A run's evidence: the files its record rests on, their digest, secrets in them, its index entry.

The gate, ``record``, ``index rebuild`` and ``verify`` all ask the same questions of a run
directory; the answers live here so that each asks them the same way.
"""

from __future__ import annotations

import io
import json
import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfm_prov.config import INPUT_ROLES, OUTPUT_ROLES, SENSITIVITIES, LakeConfig
from kfm_prov.core.findings import Finding
from kfm_prov.core.jsonio import MAX_JSON_BYTES
from kfm_prov.core.mediatypes import media_type
from kfm_prov.core.paths import walk_tree
from kfm_prov.errors import KfmProvError
from kfm_prov.store.digests import hash_files, sha256_bytes, sha256_file
from kfm_prov.store.index import IndexEntry, IoRow, RedactionRow, RunRow
from kfm_prov.store.receipts import RunReceipts, parse_run_receipts, read_bounded, receipts_from

PROV_FILE = "prov.json"
REPORT_FILE = "validation_report.json"
RECEIPT_FILES = ("run_record.json", "run_manifest.json", REPORT_FILE)


def evidence_files(config: LakeConfig, run_dir: str) -> list[str]:
    """Root-relative files whose bytes a run's record rests on: receipts, PROV, logs.

    One ``scandir`` of the run directory and of ``logs/`` (the gate asks this of every
    run of a closure): the receipts and ``prov.json`` when they are files (symlinks
    followed), and every regular file under ``logs/`` (symlinks skipped, symlinked
    directories not entered), sorted.
    """
    absolute = f"{os.fspath(config.root)}/{run_dir}"
    present = set()
    logs = False
    try:
        with os.scandir(absolute) as entries:
            for entry in entries:
                if entry.name == "logs":
                    logs = entry.is_dir()  # a symlinked logs/ is entered, as before
                elif entry.is_file():
                    present.add(entry.name)
    except OSError:
        pass
    names = [name for name in (*RECEIPT_FILES, PROV_FILE) if name in present]
    if logs:
        names += _log_files(f"{absolute}/logs")
    return [f"{run_dir}/{name}" for name in names]


def _log_files(logs: str) -> list[str]:
    """``walk_tree(logs, "logs")``'s regular files, sorted: one ``scandir`` when ``logs/``
    holds no directory (the usual case), else the walk itself."""
    found = []
    try:
        with os.scandir(logs) as entries:
            for entry in entries:
                if entry.is_symlink():
                    continue
                if entry.is_dir(follow_symlinks=False):
                    return sorted(walk_tree(Path(logs), "logs")[0])
                if entry.is_file(follow_symlinks=False):
                    found.append(f"logs/{entry.name}")
    except OSError:
        return sorted(walk_tree(Path(logs), "logs")[0])  # whatever the walk makes of it
    found.sort()
    return found


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
                  evidence: list[str], *,
                  blobs: Mapping[str, bytes] | None = None) -> list[Finding]:
    """Secrets in the receipts and in every log file of a run (locations only).

    ``blobs`` (root-relative path → bytes) are files already read, and hashed, by the
    caller: a receipt among them whose text ``json_may_hold_secrets`` clears, and every
    log among them, are judged from those very bytes by the compiled fast path, which
    finds what the precise walk finds (``tests/test_secrets_fast.py``); the rest are
    scanned as before. Logs not among them are read from disk.
    """
    from kfm_prov.core.secrets import json_may_hold_secrets
    from kfm_prov.core.validation import KINDS

    blobs = blobs or {}
    findings = []
    for kind, data in receipts_data.items():
        rel = f"{run_dir}/{KINDS[kind][1]}"
        text = _json_text(blobs.get(rel))
        if text is not None and not json_may_hold_secrets(text):
            continue
        for found in _receipt_secrets(run_dir, kind, data):
            findings.append(Finding("secret-in-receipt", f"a {found.kind} is written in the"
                                    " receipt", rel, found.location,
                                    hint="rotate the credential and rewrite the receipt"))
    for rel in evidence:
        if "/logs/" not in rel:
            continue
        for found in _log_secrets(config, rel, blobs.get(rel)):
            findings.append(Finding("secret-in-log", f"a {found.kind} is in the log",
                                    rel, found.location,
                                    hint="rotate the credential and scrub the log"))
    return findings


def _json_text(blob: bytes | None) -> str | None:
    """The text ``jsonio.loads`` parsed ``blob`` from, when it was UTF-8; else None."""
    if blob is None or json.detect_encoding(blob) != "utf-8":
        return None
    try:
        return blob.decode("utf-8")
    except UnicodeDecodeError:
        return None


def _receipt_secrets(run_dir: str, kind: str, data: object) -> list[Any]:
    """The precise scan of one receipt: every value walked, sorted by location."""
    from kfm_prov.core.secrets import find_secrets, scrub_env

    scanned = _manifest_view(run_dir, data) if kind == "run_manifest" else data
    found_here = {(f.location, f.kind): f for f in find_secrets(scanned)}
    environment = data.get("environment") if isinstance(data, dict) else None
    if isinstance(environment, dict):  # the stricter rule for variable names (*_KEY)
        clean = {k: v for k, v in environment.items() if isinstance(v, str)}
        for found in scrub_env(clean, "/environment")[1]:
            found_here.setdefault((found.location, found.kind), found)
    return sorted(found_here.values(), key=lambda f: (f.location, f.kind))


def _log_secrets(config: LakeConfig, rel: str, blob: bytes | None) -> list[Any]:
    """Secrets in one log, from ``blob`` when given, else streamed from the file."""
    from kfm_prov.core.secrets import LineScrubber, find_secrets_in_lines

    if blob is not None:  # decoded as reading the file in text mode would
        if b"\r" not in blob:  # no newline to translate: valid UTF-8 decodes the same
            try:
                return find_secrets_in_lines(blob.decode("utf-8"))
            except UnicodeDecodeError:
                pass
        with io.TextIOWrapper(io.BytesIO(blob), encoding="utf-8", errors="replace") as text:
            return find_secrets_in_lines(text.read())
    found = []
    scrubber = LineScrubber()  # a private key spans lines
    with open(config.root / rel, encoding="utf-8", errors="replace") as handle:
        for number, line in enumerate(handle, start=1):
            found += scrubber.scrub(line, f"line {number}")[1]
    return found


_ROLES = frozenset((*INPUT_ROLES, *OUTPUT_ROLES))
_LABELS = frozenset(SENSITIVITIES)
_DIGEST = re.compile(r"(?:sha256:)?[0-9a-f]{64}")


def _manifest_view(run_dir: str, data: object) -> object:
    """The manifest with the values that cannot hold a secret left out, pointers kept.

    A file entry's digest (64 hex digits), role and label (ours, from short lists), size
    (an integer), media type (the one its path's suffix gives) and, for an output, a path
    inside this run's own ``artifacts/``, hold no secret: a 10,000-file manifest is then
    one pass over the few values that can (inputs' paths, anything unexpected). A file
    entry with nothing left becomes ``None``, so list indexes, and so every finding's
    pointer, are those of the manifest itself.
    """
    if not isinstance(data, dict):
        return data
    view = dict(data)
    own = f"{run_dir}/artifacts/"
    types: dict[str, str] = {}
    for side in ("inputs", "outputs"):
        entries = data.get(side)
        if isinstance(entries, list):
            view[side] = [_entry_view(e, own if side == "outputs" else None, types)
                          for e in entries]
    return view


def _entry_view(entry: object, own: str | None, types: dict[str, str]) -> object:
    if not isinstance(entry, dict):
        return entry
    rest = {}
    for key, value in entry.items():
        if key == "digest" and isinstance(value, str) and _DIGEST.fullmatch(value):
            continue
        if (key == "role" and value in _ROLES) or (key == "sensitivity" and value in _LABELS):
            continue
        if key == "size" and (value is None or type(value) is int):
            continue
        path = entry.get("path")
        if key == "media_type" and isinstance(path, str) and isinstance(value, str):
            name = path.rpartition("/")[2]  # media_type depends on the suffixes only
            suffix = name[name.find(".", 1):] if name.find(".", 1) > 0 else ""
            if suffix not in types:
                types[suffix] = media_type(f"x{suffix}")
            if value == types[suffix]:
                continue
        if (key == "path" and own is not None and isinstance(value, str)
                and value.startswith(own) and "\n" not in value):
            continue
        rest[key] = value
    return rest or None


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


def entry_from_disk(config: LakeConfig, run_dir: str,
                     receipts: RunReceipts) -> IndexEntry:
    evidence = evidence_files(config, run_dir)
    data = {"run_record": receipts.record.to_dict(), "run_manifest": receipts.manifest.to_dict(),
            "validation_report": receipts.report.to_dict()}
    secrets = scan_evidence(config, run_dir, data, evidence)
    return index_entry(config, receipts, run_dir, evidence=evidence_digest(config, evidence),
                       secrets=len(secrets))


@dataclass(frozen=True)
class RunEvidence:
    """A run directory as its files say, each read once: what the gate relies on.

    The receipts are parsed from the very bytes that were hashed into ``digest``, so what
    the gate checks is what it hashed; ``blobs`` keeps those bytes (and those of its
    smaller logs) for the secrets scan, which so reads what was hashed too. ``receipts``
    is None when one is missing or invalid (``findings`` says which).
    """

    run_dir: str
    files: tuple[str, ...]
    digest: str
    datas: dict[str, Any]
    findings: tuple[Finding, ...]
    receipts: RunReceipts | None
    blobs: Mapping[str, bytes] = field(default_factory=dict)
    vouched: bool = False  # parsed without the schema check: see read_evidence


_LOG_BLOB_BYTES = 1 << 20  # a log up to this size is read whole, once, for hash and scan
_LOG_BLOBS_TOTAL = 256 << 20  # past this (all runs together) logs are hashed and streamed


def read_evidence(config: LakeConfig, run_dirs: Sequence[str], *,
                  vouched: Mapping[str, str] | None = None) -> dict[str, RunEvidence]:
    """The evidence of many runs: each receipt and small log read once, hashed and parsed.

    Each receipt is read once, hashed from those bytes and parsed from them; so is each
    log of up to 1 MiB (256 MiB in all), whose bytes the secrets scan then reads; larger
    logs and ``prov.json`` are hashed from their files. Run by run, so that a run's bytes
    are parsed while still in the CPU's cache (a reading thread ahead of the parsing was
    measured: no faster, more CPU).

    ``vouched`` (run dir → evidence digest) is for ``index rebuild`` only, never the gate:
    a run whose fresh digest is the one vouched for (``store/vouched.py``) is parsed
    without its schema check, and says so in ``RunEvidence.vouched``.
    """
    root = os.fspath(config.root)
    budget = [_LOG_BLOBS_TOTAL]
    result = {}
    for run_dir in run_dirs:
        rels, blobs, digests = _run_files(config, root, run_dir, budget)
        listed = "".join(f"{digests.get(rel, '-')}  {rel}\n" for rel in rels)
        digest = sha256_bytes(listed.encode())
        mine = {name: blobs.get(f"{run_dir}/{name}") for name in RECEIPT_FILES}
        known = vouched is not None and vouched.get(run_dir) == digest
        parsed = _parse_vouched(mine, run_dir) if known else None
        if parsed is None:
            known = False
            datas, findings = parse_run_receipts(mine, display=run_dir)
            receipts = None if findings else receipts_from(datas, display=run_dir)
        else:
            (datas, receipts), findings = parsed, []
        kept = {rel: blob for rel in rels if (blob := blobs.get(rel)) is not None}
        result[run_dir] = RunEvidence(run_dir, tuple(rels), digest, datas, tuple(findings),
                                      receipts, kept, known)
    return result


def _parse_vouched(blobs: Mapping[str, bytes | None], run_dir: str,
                   ) -> tuple[dict[str, Any], RunReceipts] | None:
    """Receipts vouched for with these very bytes, parsed without their schema check.

    They passed it when vouched for, under the same rules; None (check them in full)
    should anything not parse as it did then.
    """
    try:
        datas, findings = parse_run_receipts(blobs, display=run_dir, schema=False)
        if findings:
            return None
        return datas, receipts_from(datas, display=run_dir)
    except (KfmProvError, KeyError, TypeError, ValueError, AttributeError):
        return None


_RECEIPT_NAMES = frozenset(RECEIPT_FILES)
def _run_files(config: LakeConfig, root: str, run_dir: str, budget: list[int],
               ) -> tuple[list[str], dict[str, bytes | None], dict[str, str]]:
    """One run's evidence files, the bytes of its receipts and small logs, every digest.

    A receipt that cannot be read has no digest (``-`` in the listing) and is reported
    missing by the parse; ``prov.json`` and larger logs are hashed from the file.
    """
    rels = evidence_files(config, run_dir)
    blobs: dict[str, bytes | None] = {}
    digests: dict[str, str] = {}
    for rel in rels:
        if rel.rpartition("/")[2] in _RECEIPT_NAMES:
            blob = blobs[rel] = read_bounded(f"{root}/{rel}", MAX_JSON_BYTES)
        elif "/logs/" in rel and (blob := read_bounded(f"{root}/{rel}", _LOG_BLOB_BYTES)
                                  ) is not None and len(blob) <= min(_LOG_BLOB_BYTES, budget[0]):
            blobs[rel] = blob
            budget[0] -= len(blob)
        else:
            digests[rel] = sha256_file(f"{root}/{rel}")
            continue
        if blob is not None:
            digests[rel] = sha256_bytes(blob)
    return rels, blobs, digests
