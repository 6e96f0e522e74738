"""Typed receipts: run record, run manifest, validation report, waiver (SPEC §3).

Each model round-trips through ``to_dict``/``from_dict``: fields we do not know are kept in
``extra`` and written back, so a pipeline's own additions survive kfm-prov touching a
receipt. ``from_dict`` expects data that already passed the schema (``validation``);
digests are normalised to ``sha256:<hex>`` on reading.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.validation import KINDS, RUN_RECEIPTS, schema_version, validate_data
from kfm_prov.errors import InputError
from kfm_prov.store.digests import normalize_digest


def validation_label(status: str, overall: str) -> str:
    """The validation as a person should read it: a run that did not succeed is never
    promoted, so its passing gates are not shown as a "pass" (``show``, ``runs``,
    ``trace``, the audit site)."""
    if status != "success" and overall.startswith("pass"):
        return f"n/a (run {status})"
    return overall


def _split(data: dict[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in data.items() if k not in known and k != "schema_version"}


@dataclass
class Runner:
    type: str = "local"
    host: str | None = None
    user: str | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.host is not None:
            out["host"] = self.host
        if self.user is not None:
            out["user"] = self.user
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Runner:
        return cls(type=data["type"], host=data.get("host"), user=data.get("user"))


@dataclass
class CodeIdentity:
    """Which code ran: the repository, the file that ran and its git blob id (run record v2).

    ``problems`` is what capture found (``unknown-commit``, ``untracked-code``,
    ``dirty-commit``), shown by ``runs`` and ``show``; the gate never trusts it and checks
    the rest against the repository again.
    """

    repository: str | None  # remote URL without credentials; None without a remote
    worktree: str | None  # absolute path of the checkout; None outside git
    entry: str | None  # relative to the worktree, absolute when outside; None: no file
    entry_blob: str | None = None
    problems: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"repository": self.repository, "worktree": self.worktree,
                               "entry": self.entry}
        if self.entry_blob is not None:
            out["entry_blob"] = self.entry_blob
        out["problems"] = list(self.problems)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> CodeIdentity:
        return cls(repository=data.get("repository"), worktree=data.get("worktree"),
                   entry=data.get("entry"), entry_blob=data.get("entry_blob"),
                   problems=list(data.get("problems", [])))


@dataclass
class RunRecord:
    run_id: str
    dataset_family: str
    pipeline_id: str
    git_commit: str
    started_at: str
    ended_at: str | None
    status: str
    runner: Runner
    exit_code: int | None = None
    command: list[str] | None = None
    environment: dict[str, str] | None = None
    software: dict[str, str] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    code: CodeIdentity | None = None  # v2; None in v1 records and self-written ones

    _KNOWN = ("run_id", "dataset_family", "pipeline_id", "git_commit", "started_at", "ended_at",
              "status", "runner", "exit_code", "command", "environment", "software", "code")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": schema_version("run_record"),
            "run_id": self.run_id,
            "dataset_family": self.dataset_family,
            "pipeline_id": self.pipeline_id,
            "git_commit": self.git_commit,
            **({"code": self.code.to_dict()} if self.code is not None else {}),
            "started_at": self.started_at,
            "ended_at": self.ended_at,
            "status": self.status,
            "runner": self.runner.to_dict(),
        }
        for name in ("exit_code", "command", "environment", "software"):
            value = getattr(self, name)
            if value is not None:
                out[name] = value
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RunRecord:
        return cls(
            run_id=data["run_id"], dataset_family=data["dataset_family"],
            pipeline_id=data["pipeline_id"], git_commit=data["git_commit"],
            started_at=data["started_at"], ended_at=data.get("ended_at"),
            status=data["status"], runner=Runner.from_dict(data["runner"]),
            exit_code=data.get("exit_code"), command=data.get("command"),
            environment=data.get("environment"), software=data.get("software"),
            extra=_split(data, cls._KNOWN),
            code=CodeIdentity.from_dict(data["code"]) if isinstance(data.get("code"), dict)
            else None,
        )


@dataclass
class FileEntry:
    """One input or output of a run: a file at a content state."""

    path: str
    digest: str
    role: str
    size: int | None = None
    media_type: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _KNOWN = ("path", "digest", "role", "size", "media_type")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"path": self.path, "digest": self.digest, "role": self.role}
        if self.size is not None:
            out["size"] = self.size
        if self.media_type is not None:
            out["media_type"] = self.media_type
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], default_role: str, *, file: str = "",
                  pointer: str = "") -> FileEntry:
        return cls(
            path=data["path"],
            digest=normalize_digest(data["digest"], file=file, field=f"{pointer}/digest"),
            role=data.get("role", default_role), size=data.get("size"),
            media_type=data.get("media_type"), extra=_split(data, cls._KNOWN),
        )


@dataclass
class RunManifest:
    run_id: str
    spec_hash: str
    inputs: list[FileEntry]
    outputs: list[FileEntry]
    params: dict[str, Any]
    versions: dict[str, str] | None = None
    redactions: list[dict[str, Any]] | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _KNOWN = ("run_id", "spec_hash", "inputs", "outputs", "params", "versions", "redactions")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": schema_version("run_manifest"),
            "run_id": self.run_id,
            "spec_hash": self.spec_hash,
            "inputs": [e.to_dict() for e in self.inputs],
            "outputs": [e.to_dict() for e in self.outputs],
            "params": self.params,
        }
        if self.versions is not None:
            out["versions"] = self.versions
        if self.redactions is not None:
            out["redactions"] = self.redactions
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any], *, file: str = "") -> RunManifest:
        return cls(
            run_id=data["run_id"],
            spec_hash=normalize_digest(data["spec_hash"], file=file, field="/spec_hash"),
            inputs=[FileEntry.from_dict(e, "primary", file=file, pointer=f"/inputs/{i}")
                    for i, e in enumerate(data["inputs"])],
            outputs=[FileEntry.from_dict(e, "intermediate", file=file, pointer=f"/outputs/{i}")
                     for i, e in enumerate(data["outputs"])],
            params=data["params"], versions=data.get("versions"),
            redactions=data.get("redactions"), extra=_split(data, cls._KNOWN),
        )


@dataclass
class Gate:
    name: str
    status: str
    details: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "details": self.details}


@dataclass
class ValidationReport:
    run_id: str
    overall_status: str
    gates: list[Gate]
    policy: dict[str, Any] | None = None
    waiver: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _KNOWN = ("run_id", "overall_status", "gates", "policy", "waiver")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": schema_version("validation_report"),
            "run_id": self.run_id,
            "overall_status": self.overall_status,
            "gates": [g.to_dict() for g in self.gates],
        }
        if self.policy is not None:
            out["policy"] = self.policy
        if self.waiver is not None:
            out["waiver"] = self.waiver
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ValidationReport:
        return cls(
            run_id=data["run_id"], overall_status=data["overall_status"],
            gates=[Gate(g["name"], g["status"], g.get("details", {})) for g in data["gates"]],
            policy=data.get("policy"), waiver=data.get("waiver"),
            extra=_split(data, cls._KNOWN),
        )


WAIVER_FILE = "waiver.json"  # a steward's approval, next to the run's receipts


@dataclass
class Waiver:
    run_id: str
    approved_by: str
    reason: str
    gates: list[str]
    expires_at: str
    approved_at: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    _KNOWN = ("run_id", "approved_by", "reason", "gates", "expires_at", "approved_at")

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "schema_version": schema_version("waiver"),
            "run_id": self.run_id, "approved_by": self.approved_by, "reason": self.reason,
            "gates": self.gates, "expires_at": self.expires_at,
        }
        if self.approved_at is not None:
            out["approved_at"] = self.approved_at
        out.update(self.extra)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Waiver:
        return cls(run_id=data["run_id"], approved_by=data["approved_by"],
                   reason=data["reason"], gates=list(data["gates"]),
                   expires_at=data["expires_at"], approved_at=data.get("approved_at"),
                   extra=_split(data, cls._KNOWN))


@dataclass
class RunReceipts:
    """The three receipts of one run, read and validated together."""

    record: RunRecord
    manifest: RunManifest
    report: ValidationReport


def read_receipt(path: Path, kind: str, *, display: str) -> tuple[Any, list[Finding]]:
    """Load one receipt file; return its data and every schema finding (data None if unreadable)."""
    try:
        data = jsonio.read_json(path, display=display)
    except InputError as exc:
        code = "missing-receipt" if not path.exists() else "malformed-json"
        return None, [Finding(code, exc.message, display, exc.field)]
    return data, validate_data(kind, data, file=display)


def read_bounded(path: str | os.PathLike[str], limit: int) -> bytes | None:
    """A file's bytes, or more than ``limit`` of them when it is larger; None if unreadable.

    Sized by ``fstat`` and read to the end (should the file have grown since) with plain
    ``os.read`` calls on a descriptor: no file object, which cost a third of the time of
    reading a small receipt (the gate reads five files per run of a closure). A file over
    ``limit`` yields only ``limit + 1`` bytes, enough to tell that it is too large.
    """
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        size = os.fstat(fd).st_size
        if size > limit:  # rare: only tells that it is too large
            wanted, parts = limit + 1, []
            while wanted and (chunk := os.read(fd, wanted)):
                parts.append(chunk)
                wanted -= len(chunk)
            return b"".join(parts)
        first = os.read(fd, size + 1)
        if not first:
            return first
        parts = [first]
        while chunk := os.read(fd, max(size, 1 << 16)):
            parts.append(chunk)
        return first if len(parts) == 1 else b"".join(parts)
    except OSError:
        return None
    finally:
        os.close(fd)


def check_run_dir(run_dir: Path, *, display: str) -> tuple[dict[str, Any], list[Finding]]:
    """Validate the three receipts of a run directory and their agreement on ``run_id``."""
    blobs = {KINDS[kind][1]: read_bounded(run_dir / KINDS[kind][1], jsonio.MAX_JSON_BYTES)
             for kind in RUN_RECEIPTS}
    return parse_run_receipts(blobs, display=display)


def parse_run_receipts(blobs: Mapping[str, bytes | None], *, display: str, schema: bool = True,
                       ) -> tuple[dict[str, Any], list[Finding]]:
    """The receipts of a run from their bytes (file name → bytes, None when missing).

    Every problem is a finding: missing, too large, malformed, invalid, or receipts that
    disagree on ``run_id``. The data of the receipts that validate is returned by kind.
    ``schema=False`` leaves the schema check out, for receipts whose very bytes passed it
    before (``index rebuild`` of a vouched run); nothing that decides trusts that.
    """
    datas: dict[str, Any] = {}
    findings: list[Finding] = []
    for kind in RUN_RECEIPTS:
        name = KINDS[kind][1]
        where = f"{display}/{name}"
        blob = blobs.get(name)
        if blob is None:
            findings.append(Finding("missing-receipt", f"no {name}", where))
            continue
        if len(blob) > jsonio.MAX_JSON_BYTES:
            findings.append(Finding("malformed-json", f"file is over the"
                                    f" {jsonio.MAX_JSON_BYTES}-byte limit", where))
            continue
        try:
            data = jsonio.loads(blob, file=where)
        except InputError as exc:
            findings.append(Finding("malformed-json", exc.message, where, exc.field))
            continue
        found = validate_data(kind, data, file=where) if schema else []
        findings.extend(found)
        if not found:
            datas[kind] = data
    run_ids = {kind: d.get("run_id") for kind, d in datas.items()}
    if len(set(run_ids.values())) > 1:
        for kind, run_id in sorted(run_ids.items()):
            findings.append(Finding("run-id-mismatch",
                                    f"run_id {run_id!r} differs from the other receipts",
                                    f"{display}/{KINDS[kind][1]}", "/run_id"))
    return datas, findings


def receipts_from(datas: Mapping[str, Any], *, display: str) -> RunReceipts:
    """The typed receipts of data that ``parse_run_receipts`` found valid."""
    return RunReceipts(
        record=RunRecord.from_dict(datas["run_record"]),
        manifest=RunManifest.from_dict(datas["run_manifest"],
                                       file=f"{display}/run_manifest.json"),
        report=ValidationReport.from_dict(datas["validation_report"]),
    )


def load_run_receipts(run_dir: Path, *, display: str) -> RunReceipts:
    """The run's receipts as models; the first finding becomes an ``InputError``."""
    datas, findings = check_run_dir(run_dir, display=display)
    if findings:
        first = findings[0]
        raise InputError(first.message, file=first.file, field=first.pointer)
    return receipts_from(datas, display=display)


def receipt_inconsistencies(receipts: RunReceipts, *, display: str) -> list[Finding]:
    """Receipts that each validate but contradict each other: evidence edited after the fact.

    A run that says ``success`` with a non-zero exit code, or a report that says ``pass``
    while one of its own gates failed or was waived, cannot be believed either way.
    """
    record, report = receipts.record, receipts.report
    found = []
    if record.status == "success" and record.exit_code not in (None, 0):
        found.append(Finding("inconsistent-receipt", f"the run says success but exited"
                             f" {record.exit_code}", f"{display}/run_record.json", "/exit_code"))
    if record.ended_at is not None and record.ended_at < record.started_at:
        found.append(Finding("inconsistent-receipt", "the run ended before it started",
                             f"{display}/run_record.json", "/ended_at"))
    statuses = {gate.status for gate in report.gates}
    if report.overall_status == "pass" and statuses & {"fail", "waived"}:
        bad = sorted(g.name for g in report.gates if g.status in ("fail", "waived"))
        found.append(Finding("inconsistent-receipt", f"the report says pass while gate(s)"
                             f" {', '.join(bad)} did not pass",
                             f"{display}/validation_report.json", "/overall_status"))
    return found
