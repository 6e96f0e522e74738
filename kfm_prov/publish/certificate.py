"""The reconstructibility certificate: what the gate proved, and a Merkle root over it.

The certificate lists every node of the closure (runs with the digest of their evidence,
files with path and digest) and every check with its outcome. The Merkle root (RFC 6962
tree hashing over the sorted leaves) lets anyone recompute, offline, that the list was not
edited, and ``verify_certificate`` re-hashes the files to show that it still holds.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from kfm_prov import __version__
from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.validation import validate_data
from kfm_prov.errors import InputError
from kfm_prov.store.digests import hash_files

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


def build_certificate(report: GateReport, *, version: str, products: list[dict[str, Any]],
                      promotion_id: str, issued_at: str) -> dict[str, Any]:
    """The certificate of a passed gate. ``products`` are the promoted (processed) files."""
    closure = {
        "runs": [{
            "run_id": r.run_id, "family": r.family, "pipeline_id": r.pipeline_id,
            "status": r.status, "git_commit": r.git_commit, "spec_hash": r.spec_hash,
            "started_at": r.started_at, "ended_at": r.ended_at, "run_dir": r.run_dir,
            "evidence_digest": r.evidence_digest,
        } for _, r in sorted(report.runs.items())],
        "entities": [e.to_dict() for _, e in sorted(report.entities.items())],
        "edges": [list(edge) for edge in report.edges],
    }
    body = {
        "schema_version": "kfm.certificate.v1",
        "family": report.run.family,
        "version": version,
        "run_id": report.run.run_id,
        "promotion_id": promotion_id,
        "issued_at": issued_at,
        "issuer": {"software": "kfm-prov", "version": __version__},
        "products": products,
        "checks": [{k: v for k, v in c.to_dict().items() if k != "findings"}
                   for c in report.checks],
        "waiver": report.waiver,
        "closure": closure,
    }
    leaves = certificate_leaves(body)
    return {**body, "merkle": {"algorithm": MERKLE_ALGORITHM, "leaves": len(leaves),
                               "root": merkle_root(leaves)}}


def read_certificate(config: LakeConfig, rel: str) -> dict[str, Any]:
    data = jsonio.read_json(config.root / rel, display=rel)
    findings = validate_data("certificate", data, file=rel)
    if findings:
        raise InputError.from_findings("certificate does not validate", findings)
    return data


def verify_certificate(config: LakeConfig, rel: str,
                       fresh: Mapping[str, str] | None = None) -> list[Finding]:
    """Findings if the certificate was edited or no longer holds; empty when it holds.

    Re-hashes (fresh) the products, the raw sources and the evidence of every run;
    ``fresh`` holds digests the caller has just computed itself (``verify`` hashes every
    raw and processed file once), which are not computed again.
    """
    from kfm_prov.record import evidence_digest, evidence_files

    try:
        cert = read_certificate(config, rel)
    except InputError as exc:
        return exc.findings or [Finding("certificate-invalid", exc.message, rel, exc.field)]
    findings: list[Finding] = []
    leaves = certificate_leaves({k: v for k, v in cert.items() if k != "merkle"})
    if merkle_root(leaves) != cert["merkle"]["root"] or len(leaves) != cert["merkle"]["leaves"]:
        findings.append(Finding("certificate-edited", "the certificate does not hash to its"
                                " Merkle root: it was edited after promotion", rel,
                                "/merkle/root"))
    if (rel != certificate_rel(config, cert["family"], cert["version"])
            or not any(r["run_id"] == cert["run_id"] for r in cert["closure"]["runs"])):
        findings.append(Finding("certificate-edited", "the certificate names another family,"
                                " version or run than the one it certifies", rel))
    if any(c["status"] != "pass" for c in cert["checks"]):
        findings.append(Finding("certificate-edited", "a certificate must record only passed"
                                " checks", rel, "/checks"))
    files = [(p["path"], p["digest"]) for p in cert["products"]]
    files += [(e["path"], e["digest"]) for e in cert["closure"]["entities"]
              if e["kind"] == "raw"]
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
    for run in cert["closure"]["runs"]:
        run_dir = run["run_dir"]
        if not (config.root / run_dir).is_dir():
            findings.append(Finding("run-missing", f"run {run['run_id']} of the closure is gone",
                                    run_dir))
        elif evidence_digest(config, evidence_files(config, run_dir)) != run["evidence_digest"]:
            findings.append(Finding("receipt-modified", f"receipts or logs of run"
                                    f" {run['run_id']} changed since promotion", run_dir))
    return findings


def certificates(config: LakeConfig) -> list[Path]:
    prov_dir = config.dir("prov")
    return sorted(prov_dir.glob("*/*.certificate.json")) if prov_dir.is_dir() else []
