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
from kfm_prov.config import SENSITIVITY_RANK, LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.validation import validate_data
from kfm_prov.errors import InputError
from kfm_prov.store import labels, raw
from kfm_prov.store.digests import hash_files, sha256_bytes
from kfm_prov.store.evidence import RunEvidence, read_evidence
from kfm_prov.store.release import CarriedFrom

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
             "issuer", "products", "checks", "waiver", "closure", "records", "merkle",
             "steward_decisions", "dropped")

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
    #: Published records bound by digest: ``{"prov_bundle": {"path", "digest"},
    #: "stac_item": {...}}`` (absent in certificates of kfm-prov before 0.2).
    records: dict[str, dict[str, Any]] | None = None
    #: Relabels of closure raw files the gate relied on (``raw relabel``), each naming its
    #: trail entry by digest; absent when there were none.
    steward_decisions: tuple[dict[str, Any], ...] = ()
    #: Products of the previous version left out of this one on purpose (``--drop``);
    #: every other product of it is in ``products``, carried forward (``carried_from``).
    dropped: tuple[str, ...] = ()

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
                "closure": closure, **({"records": self.records} if self.records else {}),
                **({"steward_decisions": [dict(d) for d in self.steward_decisions]}
                   if self.steward_decisions else {}),
                **({"dropped": list(self.dropped)} if self.dropped else {})}

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
            _extra(closure, ("runs", "entities", "edges")), data.get("records"),
            tuple(dict(d) for d in data.get("steward_decisions", ())),
            tuple(data.get("dropped", ())))

    def sealed(self) -> Certificate:
        """This certificate with its Merkle root computed over its body."""
        leaves = certificate_leaves(self.body())
        return replace(self, merkle={"algorithm": MERKLE_ALGORITHM, "leaves": len(leaves),
                                     "root": merkle_root(leaves)})

    def product(self, digest: str) -> dict[str, Any] | None:
        """The promoted product with these bytes, if the certificate names one."""
        return next((p for p in self.products if p.get("digest") == digest), None)

    def carried(self) -> list[tuple[int, dict[str, Any]]]:
        """(number, entry) of each product carried forward from an earlier version."""
        return [(n, p) for n, p in enumerate(self.products) if p.get("carried_from")]


def build_certificate(report: GateReport, *, version: str, products: list[dict[str, Any]],
                      promotion_id: str, issued_at: str,
                      records: dict[str, dict[str, Any]] | None = None,
                      dropped: Sequence[str] = ()) -> Certificate:
    """The sealed certificate of a passed gate. ``products`` are the promoted files,
    those carried forward from the previous version included (with ``carried_from``)."""
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
        records=records, steward_decisions=tuple(report.steward_decisions),
        dropped=tuple(sorted(dropped)),
    ).sealed()


def stac_content_digest(data: Any) -> str:
    """Digest of a STAC object without its ``links``: what a version's item says.

    Links change after promotion (a later version adds ``latest-version`` to older
    items); everything else an item says (assets, checksums, license, geometry, times)
    is fixed when the version is promoted, and the certificate binds it by this digest.
    Anything that is not a JSON object (or not canonical JSON) gets a digest no item has.
    """
    import rfc8785

    if not isinstance(data, Mapping):
        return sha256_bytes(b"not a STAC object")
    try:
        return sha256_bytes(rfc8785.dumps({k: v for k, v in data.items() if k != "links"}))
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        return sha256_bytes(b"not canonical JSON")


def dcat_content_digest(turtle: bytes, subjects: Sequence[str], *, file: str) -> str:
    """Digest of what the family's DCAT says about these distributions, and one level of
    what they point at (their checksum, their generating activity).

    The family's Turtle gains distributions with every version, so the file as a whole
    cannot be bound; each version's own statements can. Blank nodes are named by the
    predicate that reaches them, so the digest does not depend on parser labels.
    """
    from rdflib import BNode, Graph, URIRef
    from rdflib.namespace import DCAT

    graph = Graph(bind_namespaces="none")
    try:
        graph.parse(data=turtle.decode("utf-8"), format="turtle")
    except Exception as exc:  # rdflib raises many unrelated types for bad Turtle
        raise InputError(f"malformed Turtle: {exc}".splitlines()[0], file=file) from exc

    def term(node: Any) -> str:
        return "_" if isinstance(node, BNode) else node.n3()

    lines = []
    for subject in sorted(subjects):
        node = URIRef(subject)
        for predicate, obj in graph.predicate_objects(node):
            lines.append(f"{subject} {predicate.n3()} {term(obj)}")
            if isinstance(obj, URIRef | BNode) and (obj, DCAT.distribution, None) not in graph:
                lines += [f"{subject} {predicate.n3()} {p2.n3()} {term(o2)}"
                          for p2, o2 in graph.predicate_objects(obj)]
    return sha256_bytes("\n".join(sorted(lines)).encode("utf-8"))


def bound_records(bundle: tuple[str, bytes], item: tuple[str, bytes],
                  dcat: tuple[str, bytes, Sequence[str]]) -> dict[str, dict[str, Any]]:
    """The published records a certificate binds by digest (``Certificate.records``):
    the PROV bundle's bytes, the STAC item without its links, and the version's
    statements in the family's DCAT (``subjects``: its distributions)."""
    (bundle_rel, bundle_bytes), (item_rel, item_bytes) = bundle, item
    dcat_rel, dcat_bytes, subjects = dcat
    return {"prov_bundle": {"path": bundle_rel, "digest": sha256_bytes(bundle_bytes)},
            "stac_item": {"path": item_rel, "digest": stac_content_digest(
                jsonio.loads(item_bytes, file=item_rel))},
            "dcat": {"path": dcat_rel, "subjects": sorted(subjects),
                     "digest": dcat_content_digest(dcat_bytes, subjects, file=dcat_rel)}}


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
                       fresh: Mapping[str, str] | None = None,
                       notes: list[Finding] | None = None, *,
                       follow_carried: bool = True, catalog: bool = True,
                       verified_origins: dict[str, list[Finding]] | None = None,
                       ) -> list[Finding]:
    """Findings if the certificate was edited or no longer holds; empty when it holds.

    Re-hashes (fresh) the products, the raw sources and the evidence of every run;
    ``fresh`` holds digests the caller has just computed itself (``verify`` hashes every
    raw and processed file once), which are not computed again. A raw label changed
    since promotion by ``raw relabel`` (the trail says so, and the manifest agrees with
    the trail) is no finding: it goes to ``notes`` when given. Products carried forward
    are checked against the certificate of their first promotion, which is verified too
    (one level: ``follow_carried`` is False there, so edited origins cannot make a loop).
    ``catalog=False`` leaves out the family's DCAT statements (the only check that needs
    rdflib): the gate's proof never reads the catalog, which `verify` checks in full.
    ``verified_origins`` keeps the findings of each origin certificate verified, so that `verify`
    checks a version many later versions carry from once, not once per carrying version.
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
    files += [(e.path, e.digest) for e in cert.entities if e.kind in ("raw", "processed")]
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
    dirs = [run.run_dir for run in cert.runs if (config.root / run.run_dir).is_dir()]
    evidence = read_evidence(config, dirs)  # each receipt read and hashed once
    findings += _check_runs(cert, evidence)
    findings += _check_labels(config, rel, cert, evidence, notes)
    findings += _check_decisions(config, rel, cert)
    findings += _check_records(config, rel, cert, catalog=catalog)
    if follow_carried:
        findings += _check_carried(config, rel, cert, known, catalog=catalog,
                                   verified={} if verified_origins is None
                                   else verified_origins)
    return findings


def _check_carried(config: LakeConfig, rel: str, cert: Certificate,
                   fresh: Mapping[str, str], *, catalog: bool,
                   verified: dict[str, list[Finding]]) -> list[Finding]:
    """Each carried product as its first promotion certified it, and that certificate
    still holding: the carried bytes' proof is that version's closure, not this one's.

    The origin must be an earlier version of the family whose own (not carried) product
    has these bytes, this source path and this label, from the run named; so the chain
    is one link long and checking it cannot loop.
    """
    findings: list[Finding] = []
    origins: dict[str, Certificate | None] = {}
    for number, product in cert.carried():
        pointer = f"/products/{number}/carried_from"
        try:
            origin = CarriedFrom.from_dict(product["carried_from"])
        except (KeyError, TypeError, AttributeError):
            findings.append(Finding("certificate-invalid", "malformed carried_from", rel,
                                    pointer))
            continue
        if (origin.version == cert.version
                or origin.certificate != certificate_rel(config, cert.family, origin.version)):
            findings.append(Finding("carried-origin-broken", f"{product['path']} names"
                                    f" {origin.certificate} as its first promotion, which is"
                                    f" not an earlier certificate of {cert.family}", rel, pointer))
            continue
        if origin.certificate not in origins:
            if origin.certificate not in verified:
                verified[origin.certificate] = (
                    verify_certificate(config, origin.certificate, fresh,
                                       follow_carried=False, catalog=catalog)
                    if (config.root / origin.certificate).is_file()
                    else [Finding("file-missing", f"{origin.certificate} is gone",
                                  origin.certificate)])
            problems = verified[origin.certificate]
            if problems:
                findings.append(Finding("carried-origin-broken", f"{product['path']} is"
                                        f" carried from {cert.family} {origin.version}, whose"
                                        f" certificate no longer holds: {problems[0].message}",
                                        origin.certificate, problems[0].pointer))
                origins[origin.certificate] = None
                continue
            origins[origin.certificate] = read_certificate(config, origin.certificate)
        first = origins[origin.certificate]
        if first is None:
            continue
        entry = next((p for p in first.products if p.get("path") == origin.path), None)
        same = entry is not None and not entry.get("carried_from") and all(
            entry.get(k) == product.get(k) for k in ("digest", "source_path", "sensitivity"))
        if not same or first.run_id != origin.run_id:
            findings.append(Finding("carried-origin-broken", f"{product['path']} is not what"
                                    f" {cert.family} {origin.version} published as"
                                    f" {origin.path} from run {origin.run_id}", rel, pointer))
    return findings


def _check_runs(cert: Certificate, evidence: Mapping[str, RunEvidence]) -> list[Finding]:
    """Each run of the closure: its evidence unchanged, and the facts the certificate
    states about it (status, commit, times) the ones its receipts state."""
    findings = []
    for run in cert.runs:
        ev = evidence.get(run.run_dir)
        if ev is None:
            findings.append(Finding("run-missing", f"run {run.run_id} of the closure is gone",
                                    run.run_dir))
            continue
        if ev.digest != run.evidence_digest:
            findings.append(Finding("receipt-modified", f"receipts or logs of run"
                                    f" {run.run_id} changed since promotion", run.run_dir))
            continue
        if ev.receipts is None:
            continue  # cannot be: the evidence is as certified, and it validated then
        record, manifest = ev.receipts.record, ev.receipts.manifest
        said = {"run_id": record.run_id, "family": record.dataset_family,
                "pipeline_id": record.pipeline_id, "status": record.status,
                "git_commit": record.git_commit, "spec_hash": manifest.spec_hash,
                "started_at": record.started_at, "ended_at": record.ended_at}
        for name, value in said.items():
            if getattr(run, name) != value:
                findings.append(Finding("certificate-edited", f"the certificate says run"
                                        f" {run.run_id} has {name} {getattr(run, name)!r};"
                                        f" its receipts say {value!r}",
                                        f"{run.run_dir}/run_record.json", f"/{name}"))
    return findings


def _check_labels(config: LakeConfig, rel: str, cert: Certificate,
                  evidence: Mapping[str, RunEvidence],
                  notes: list[Finding] | None = None) -> list[Finding]:
    """License, attribution and sensitivity as the raw manifests and the producing run's
    receipts say: a certificate never states a lower label than its evidence. A label
    a steward changed since promotion with ``raw relabel`` is a note, not a finding."""
    findings = []
    trails: dict[str, list[labels.LabelEvent] | None] = {}
    raws = [e for e in cert.entities if e.kind == "raw"]
    try:
        infos = raw.lookup_many(config, [e.path for e in raws])
    except InputError as exc:
        return [Finding("raw-manifest-invalid", exc.message, exc.file, exc.field)]
    for entity in raws:
        info = infos.get(entity.path)
        if info is None or info.digest != entity.digest:
            findings.append(Finding("raw-not-recorded", f"no raw manifest records"
                                    f" {entity.path} with the certified bytes", entity.path))
            continue
        for name in ("license", "attribution", "sensitivity"):
            if getattr(entity, name) != getattr(info, name):
                change = _relabelled(config, trails, entity, name, info)
                if change is not None:
                    if notes is not None:
                        notes.append(Finding(
                            "raw-relabelled-since-promotion", f"{entity.path} was relabelled"
                            f" since {cert.family} {cert.version} was promoted: {name}"
                            f" {getattr(entity, name)!r} → {getattr(info, name)!r}"
                            f" ({change.by}, {change.at}: {change.reason})",
                            labels.trail_rel(info.manifest.rsplit("/", 1)[0]), name,
                            hint="the certificate keeps the labels it was issued with;"
                                 " promote a new version to publish under the new ones"))
                    continue
                findings.append(Finding("certificate-label-mismatch", f"the certificate says"
                                        f" {entity.path} has {name}"
                                        f" {getattr(entity, name)!r}; its manifest says"
                                        f" {getattr(info, name)!r}", info.manifest, name))
    rank = SENSITIVITY_RANK
    floor = max((rank.get(e.sensitivity or "", 1) for e in raws), default=1)
    receipts = {run.run_id: ev.receipts for run in cert.runs
                if (ev := evidence.get(run.run_dir)) is not None and ev.receipts is not None}
    if cert.run_id not in receipts:
        return findings  # reported by _check_runs
    declared = {o.path: o.extra.get("sensitivity")
                for o in receipts[cert.run_id].manifest.outputs}
    redacted = [rank[r["sensitivity"]] for run in receipts.values()
                for r in run.manifest.redactions or []]
    lowest = min([floor, *redacted])
    for number, product in enumerate(cert.products):
        if product.get("carried_from"):
            continue  # labelled by its first promotion: _check_carried compares the two
        label, source = product.get("sensitivity"), product.get("source_path")
        said = declared.get(str(source))
        if said is not None and label != said:
            findings.append(Finding("certificate-label-mismatch", f"the certificate says"
                                    f" {product['path']} is {label}; run {cert.run_id}"
                                    f" declared {said}", rel, f"/products/{number}/sensitivity"))
        elif said is None and rank.get(label or "", -1) < lowest:
            findings.append(Finding("certificate-label-mismatch", f"the certificate says"
                                    f" {product['path']} is {label}, below what its raw"
                                    " sources and recorded redactions allow", rel,
                                    f"/products/{number}/sensitivity"))
    return findings


def _relabelled(config: LakeConfig, trails: dict[str, list[labels.LabelEvent] | None],
                entity: Entity, name: str, info: raw.RawInfo) -> labels.LabelEvent | None:
    """The relabel that explains why ``entity``'s certified ``name`` is no longer what
    its manifest says, or None: the trail must hold an entry that set the certified value,
    a later ``relabel`` of that label, and end on what the manifest says now."""
    directory = info.manifest.rsplit("/", 1)[0]
    if directory not in trails:
        try:
            trails[directory] = labels.read_trail(config, directory)
        except InputError:
            trails[directory] = None  # verify reports the unreadable trail itself
    events = [e for e in trails[directory] or () if e.path == entity.path
              and e.digest == entity.digest]
    if not events or labels.differences(events[-1].new, labels.labels_of(info)):
        return None
    certified = getattr(entity, name)
    since = next((i for i in range(len(events) - 1, -1, -1)
                  if events[i].new.get(name) == certified), None)
    if since is None:
        return None
    return next((e for e in reversed(events[since + 1:])
                 if e.action == "relabel" and name in e.changed()), None)


def _check_decisions(config: LakeConfig, rel: str, cert: Certificate) -> list[Finding]:
    """Each relabel the certificate relied on is still in its trail (by entry digest)."""
    findings: list[Finding] = []
    seen: dict[str, set[str] | None] = {}
    for number, decision in enumerate(cert.steward_decisions):
        trail = str(decision.get("trail", ""))
        if trail not in seen:
            try:
                events = labels.read_trail(config, trail.rsplit("/", 1)[0])
            except InputError:
                events = None
            seen[trail] = None if events is None else {e.entry_digest for e in events}
        if decision.get("entry") not in (seen[trail] or set()):
            findings.append(Finding("steward-decision-missing", f"the relabel of"
                                    f" {decision.get('path')} by {decision.get('by')} at"
                                    f" {decision.get('at')}, which the certificate relied on,"
                                    f" is no longer in {trail}", rel,
                                    f"/steward_decisions/{number}",
                                    hint="restore the label trail from a backup"))
    return findings


def _check_records(config: LakeConfig, rel: str, cert: Certificate, *,
                   catalog: bool = True) -> list[Finding]:
    """The PROV bundle (its bytes), STAC item (all but its links) and, with ``catalog``,
    the version's DCAT statements, as promoted."""
    if not cert.records:
        return [Finding("records-unbound", "the certificate binds no published records (it"
                        " predates kfm-prov 0.2), so edits to its bundle and item go unseen",
                        rel, "/records", hint="promote a new version to bind them")]
    findings = []
    for name, bound in sorted(cert.records.items()):
        if name == "dcat" and not catalog:
            continue
        path = config.root / bound["path"]
        if not path.is_file():
            findings.append(Finding("record-missing", f"the {name} of {cert.family}"
                                    f" {cert.version} is gone", bound["path"]))
            continue
        try:
            if name == "stac_item":
                now = stac_content_digest(jsonio.read_json(path, display=bound["path"]))
            elif name == "dcat":
                now = dcat_content_digest(path.read_bytes(), bound.get("subjects", []),
                                          file=bound["path"])
            else:
                now = hash_files([path])[0]
        except InputError as exc:
            findings.append(Finding("record-modified", exc.message, bound["path"]))
            continue
        if now != bound["digest"]:
            findings.append(Finding("record-modified", f"the {name} of {cert.family}"
                                    f" {cert.version} was edited after promotion",
                                    bound["path"], hint="restore it from a backup; published"
                                    " records are immutable"))
    return findings


def certificates(config: LakeConfig) -> list[Path]:
    prov_dir = config.dir("prov")
    return sorted(prov_dir.glob("*/*.certificate.json")) if prov_dir.is_dir() else []
