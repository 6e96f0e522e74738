"""The reconstructibility certificate: what the gate proved, and a Merkle root over it.

The certificate lists every node of the closure (runs with the digest of their evidence,
files with path and digest) and every check with its outcome. The Merkle root (RFC 6962
tree hashing over the sorted leaves) lets anyone recompute, offline, that the list was not
edited, and ``verify_certificate`` re-hashes the files to show that it still holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfm_prov import __version__
from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.validation import validate_data
from kfm_prov.errors import InputError
from kfm_prov.store.digests import hash_files
from kfm_prov.store.evidence import evidence_digest, evidence_files

if TYPE_CHECKING:
    from kfm_prov.gate import GateReport

MERKLE_ALGORITHM = "sha256-rfc6962"


def certificate_rel(config: LakeConfig, family: str, version: str) -> str:
    return f"{config.rel('prov')}/{family}/{version}.certificate.json"


def merkle_root(leaves: Sequence[str]) -> str:
    """RFC 6962 Merkle tree hash of the UTF-8 leaves, in the order given."""
    def tree(nodes: list[bytes]) -> bytes:
        if len(nodes) == 1:
            return hashlib.sha256(b"\x00" + nodes[0]).digest()
        split = 1 << ((len(nodes) - 1).bit_length() - 1)
        return hashlib.sha256(b"\x01" + tree(nodes[:split]) + tree(nodes[split:])).digest()

    if not leaves:
        return "sha256:" + hashlib.sha256(b"").hexdigest()
    return "sha256:" + tree([leaf.encode("utf-8") for leaf in leaves]).hex()


def certificate_leaves(body: dict[str, Any]) -> list[str]:
    """One leaf per node, edge, product and check, and one for every other field.

    Each leaf is the node's canonical JSON (RFC 8785), so the root covers everything the
    certificate says (a run's commit, an entity's license, the waiver, the run id), not
    only paths and digests; any edit but a recomputed root is seen. Sorted, so the root
    does not depend on walk order.
    """
    import rfc8785

    def leaf(kind: str, value: Any) -> str:
        return f"{kind}\t{rfc8785.dumps(value).decode('utf-8')}"

    closure = body.get("closure") or {}
    leaves = [leaf("run", r) for r in closure.get("runs", [])]
    leaves += [leaf("entity", e) for e in closure.get("entities", [])]
    leaves += [leaf("edge", e) for e in closure.get("edges", [])]
    leaves += [leaf("product", p) for p in body.get("products", [])]
    leaves += [leaf("check", c) for c in body.get("checks", [])]
    leaves.append(leaf("header", {k: v for k, v in body.items()
                                  if k not in ("closure", "products", "checks", "merkle")}))
    leaves.append(leaf("closure", {k: v for k, v in closure.items()
                                   if k not in ("runs", "entities", "edges")}))
    return sorted(leaves)


SCHEMA_VERSION = "kfm.certificate.v1"


def _extra(data: Mapping[str, Any], known: tuple[str, ...]) -> dict[str, Any]:
    """Keys a newer kfm-prov wrote that this one does not know: kept, so they round-trip."""
    return {k: v for k, v in data.items() if k not in known}


@dataclass
class Entity:
    """A file of the closure: what was used or made, at which path, with which bytes."""

    path: str
    digest: str
    zone: str
    kind: str  # raw | processed | product | work | orphan
    license: str | None = None
    attribution: str | None = None
    sensitivity: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Entity:
        return cls(data["path"], data["digest"], data["zone"], data["kind"],
                   data.get("license"), data.get("attribution"), data.get("sensitivity"))


@dataclass(frozen=True)
class ClosureRun:
    """A run of the closure, with the digest of the evidence its record rests on."""

    _KEYS = ("run_id", "family", "pipeline_id", "status", "git_commit", "spec_hash",
             "started_at", "ended_at", "run_dir", "evidence_digest")

    run_id: str
    family: str | None
    pipeline_id: str | None
    status: str
    git_commit: str
    spec_hash: str
    started_at: str | None
    ended_at: str | None
    run_dir: str
    evidence_digest: str
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, **{k: getattr(self, k) for k in self._KEYS}}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ClosureRun:
        get = data.get
        return cls(data["run_id"], get("family"), get("pipeline_id"), data["status"],
                   data["git_commit"], data["spec_hash"], get("started_at"), get("ended_at"),
                   data["run_dir"], data["evidence_digest"], _extra(data, cls._KEYS))


@dataclass(frozen=True)
class CheckOutcome:
    """One check of the gate as certificates and refusals record it: id, status, reasons."""

    id: str
    title: str
    status: str
    reasons: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"id": self.id, "title": self.title, "status": self.status}
        if self.reasons:
            out["reasons"] = list(self.reasons)
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CheckOutcome:
        return cls(data["id"], data["title"], data["status"], tuple(data.get("reasons", ())))


@dataclass(frozen=True)
class Certificate:
    """The reconstructibility certificate of one promoted version (``kfm.certificate.v1``).

    ``products`` and the closure's entities keep the dictionaries the gate wrote (their
    optional fields vary); everything else is typed. ``from_dict(d).to_dict() == d``.
    """

    _KEYS = ("schema_version", "family", "version", "run_id", "promotion_id", "issued_at",
             "issuer", "products", "checks", "waiver", "closure", "merkle")

    family: str
    version: str
    run_id: str
    promotion_id: str
    issued_at: str
    issuer: dict[str, Any]
    products: tuple[dict[str, Any], ...]
    checks: tuple[CheckOutcome, ...]
    waiver: dict[str, Any] | None
    runs: tuple[ClosureRun, ...]
    entities: tuple[Entity, ...]
    edges: tuple[tuple[str, str, str], ...]
    merkle: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    closure_extra: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """Everything the Merkle root covers: the certificate without ``merkle``."""
        closure = {**self.closure_extra, "runs": [r.to_dict() for r in self.runs],
                   "entities": [e.to_dict() for e in self.entities],
                   "edges": [list(e) for e in self.edges]}
        return {**self.extra, "schema_version": SCHEMA_VERSION, "family": self.family,
                "version": self.version, "run_id": self.run_id,
                "promotion_id": self.promotion_id, "issued_at": self.issued_at,
                "issuer": self.issuer, "products": [dict(p) for p in self.products],
                "checks": [c.to_dict() for c in self.checks], "waiver": self.waiver,
                "closure": closure}

    def to_dict(self) -> dict[str, Any]:
        body = self.body()
        return body if self.merkle is None else {**body, "merkle": self.merkle}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Certificate:
        """From JSON that validated against ``certificate.v1.json``."""
        closure = data["closure"]
        return cls(
            data["family"], data["version"], data["run_id"], data["promotion_id"],
            data["issued_at"], dict(data["issuer"]), tuple(dict(p) for p in data["products"]),
            tuple(CheckOutcome.from_dict(c) for c in data["checks"]), data.get("waiver"),
            tuple(ClosureRun.from_dict(r) for r in closure["runs"]),
            tuple(Entity.from_dict(e) for e in closure["entities"]),
            tuple((str(a), str(b), str(c)) for a, b, c in closure["edges"]),
            data.get("merkle"), _extra(data, cls._KEYS),
            _extra(closure, ("runs", "entities", "edges")))

    def sealed(self) -> Certificate:
        """This certificate with its Merkle root computed over its body."""
        leaves = certificate_leaves(self.body())
        return replace(self, merkle={"algorithm": MERKLE_ALGORITHM, "leaves": len(leaves),
                                     "root": merkle_root(leaves)})

    def product(self, digest: str) -> dict[str, Any] | None:
        """The promoted product with these bytes, if the certificate names one."""
        return next((p for p in self.products if p.get("digest") == digest), None)


def build_certificate(report: GateReport, *, version: str, products: list[dict[str, Any]],
                      promotion_id: str, issued_at: str) -> Certificate:
    """The sealed certificate of a passed gate. ``products`` are the promoted files."""
    runs = tuple(ClosureRun(r.run_id, r.family, r.pipeline_id, r.status, r.git_commit,
                            r.spec_hash, r.started_at, r.ended_at, r.run_dir,
                            r.evidence_digest) for _, r in sorted(report.runs.items()))
    checks = tuple(CheckOutcome(c.id, c.title, c.status,
                                  tuple(sorted({f.code for f in c.findings})))
                   for c in report.checks)
    return Certificate(
        report.run.family, version, report.run.run_id, promotion_id, issued_at,
        {"software": "kfm-prov", "version": __version__}, tuple(products), checks,
        report.waiver, runs, tuple(e for _, e in sorted(report.entities.items())),
        tuple(tuple(edge) for edge in report.edges),  # type: ignore[misc]
    ).sealed()


def read_certificate_data(config: LakeConfig, rel: str) -> dict[str, Any]:
    """The certificate's JSON, strictly read and schema-validated (``InputError`` if not)."""
    data = jsonio.read_json(config.root / rel, display=rel)
    findings = validate_data("certificate", data, file=rel)
    if findings:
        raise InputError.from_findings("certificate does not validate", findings)
    return dict(data)


def read_certificate(config: LakeConfig, rel: str) -> Certificate:
    """The certificate at ``rel`` as a typed record (validated; not yet verified)."""
    return Certificate.from_dict(read_certificate_data(config, rel))


def verify_certificate(config: LakeConfig, rel: str,
                       fresh: Mapping[str, str] | None = None) -> list[Finding]:
    """Findings if the certificate was edited or no longer holds; empty when it holds.

    Re-hashes (fresh) the products, the raw sources and the evidence of every run;
    ``fresh`` holds digests the caller has just computed itself (``verify`` hashes every
    raw and processed file once), which are not computed again.
    """
    try:
        data = read_certificate_data(config, rel)
        cert = Certificate.from_dict(data)
    except InputError as exc:
        return exc.findings or [Finding("certificate-invalid", exc.message, rel, exc.field)]
    findings: list[Finding] = []
    leaves = certificate_leaves({k: v for k, v in data.items() if k != "merkle"})
    merkle = data["merkle"]
    if merkle_root(leaves) != merkle["root"] or len(leaves) != merkle["leaves"]:
        findings.append(Finding("certificate-edited", "the certificate does not hash to its"
                                " Merkle root: it was edited after promotion", rel,
                                "/merkle/root"))
    if (rel != certificate_rel(config, cert.family, cert.version)
            or not any(r.run_id == cert.run_id for r in cert.runs)):
        findings.append(Finding("certificate-edited", "the certificate names another family,"
                                " version or run than the one it certifies", rel))
    if any(c.status != "pass" for c in cert.checks):
        findings.append(Finding("certificate-edited", "a certificate must record only passed"
                                " checks", rel, "/checks"))
    files = [(p["path"], p["digest"]) for p in cert.products]
    files += [(e.path, e.digest) for e in cert.entities if e.kind == "raw"]
    present = [(path, digest) for path, digest in files if (config.root / path).is_file()]
    for path, digest in files:
        if (path, digest) not in present:
            findings.append(Finding("file-missing", f"{path} is gone", path))
    known = dict(fresh or {})
    todo = sorted({path for path, _ in present if path not in known})
    known.update(zip(todo, hash_files([config.root / path for path in todo]), strict=True))
    for path, digest in present:
        now = known[path]
        if now != digest:
            findings.append(Finding("file-modified", f"{path} changed since promotion: now"
                                    f" {now[:19]}…, certified {digest[:19]}…", path))
    for run in cert.runs:
        run_dir = run.run_dir
        if not (config.root / run_dir).is_dir():
            findings.append(Finding("run-missing", f"run {run.run_id} of the closure is gone",
                                    run_dir))
        elif evidence_digest(config, evidence_files(config, run_dir)) != run.evidence_digest:
            findings.append(Finding("receipt-modified", f"receipts or logs of run"
                                    f" {run.run_id} changed since promotion", run_dir))
    return findings


def certificates(config: LakeConfig) -> list[Path]:
    prov_dir = config.dir("prov")
    return sorted(prov_dir.glob("*/*.certificate.json")) if prov_dir.is_dir() else []
