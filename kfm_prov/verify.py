"""``verify``: the lake-wide audit. Does what was published still hold?

Every raw file still has its recorded bytes and the labels its trail gives it; every
processed version matches its ``checksums.sha256`` (nothing missing, changed or added),
has its STAC item, PROV bundle, DCAT distributions and a certificate that still holds;
nothing sits in processed without a promotion; no STAC document points at a file that is
not there. Notes (``NOTE_CODES``) are told but fail nothing.

Reads only, and hashes fresh (never the digest cache): raw and processed files in one
parallel batch, then each certificate's closure (``certificate.verify_certificate``).
Every problem is a ``Finding`` with a stable code and the file it is about.
"""

from __future__ import annotations

import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.keys import PublicKey
from kfm_prov.errors import InputError
from kfm_prov.store import raw
from kfm_prov.store.digests import hash_files, hex_of

CHECKSUMS = "checksums.sha256"
CODES = (
    "raw-manifest-invalid", "raw-missing", "raw-modified",
    "processed-checksums-missing", "processed-checksums-invalid", "processed-missing",
    "processed-modified", "processed-unlisted", "unpromoted-processed",
    "missing-certificate", "certificate-broken", "missing-stac-item", "missing-bundle",
    "missing-dcat-distribution", "dcat-invalid", "stac-invalid", "stac-dangling-asset",
    "stac-dangling-link", "stac-checksum-mismatch",
    "attestation-missing", "attestation-invalid", "attestation-untrusted",
    "attestation-signature", "attestation-subject-mismatch", "attestation-record-mismatch",
    "attestation-orphan", "run-signature-invalid", "raw-labels-edited",
    "raw-labels-trail-invalid", "raw-labels-untracked",
)
#: Codes of notes: worth telling, but nothing failed (``VerifyReport.notes``).
NOTE_CODES = ("raw-relabelled-since-promotion",)


@dataclass
class VerifyReport:
    """What ``kfm-prov verify`` found, and how much it looked at."""

    findings: list[Finding] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=dict)
    notes: list[Finding] = field(default_factory=list)  # not failures: relabels since promotion

    @property
    def ok(self) -> bool:
        return not self.findings

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "checked": dict(self.checked),
                "findings": [f.to_dict() for f in self.findings],
                "notes": [f.to_dict() for f in self.notes]}


def verify_lake(config: LakeConfig) -> list[Finding]:
    """Every finding of the audit (empty when the lake holds); see ``audit``."""
    return audit(config).findings


def audit(config: LakeConfig, *, require_signatures: bool = False,
          keys: Sequence[PublicKey] = ()) -> VerifyReport:
    """Run every check of the audit. Reads only.

    Signed attestations (versions and runs) are checked against ``[trust] keys`` plus
    ``keys``; with ``require_signatures`` (or ``policy.require_signatures``) a version
    without one is a finding.
    """
    from kfm_prov.store.signing import trusted_keys

    report = VerifyReport()
    audit_ = _Audit(config, report)
    trusted = trusted_keys(config, keys)  # a broken trust list is bad input: exit 2
    raws = audit_.raw_files()
    versions = audit_.processed_versions()
    fresh = audit_.hash_all(raws, versions)
    audit_.check_raw(raws, fresh)
    audit_.check_raw_labels(raws)
    audit_.check_processed(versions, fresh)
    audit_.check_promotions(versions, fresh)
    audit_.check_attestations(versions, fresh, trusted,
                              require_signatures or config.require_signatures)
    audit_.check_stac(fresh)
    for found in (report.findings, report.notes):
        found.sort(key=lambda f: (f.file or "", f.code, f.pointer or "", f.message))
    return report


@dataclass
class _Version:
    family: str
    version: str
    rel: str  # root-relative version directory
    listed: dict[str, str]  # name → recorded digest (checksums.sha256)
    present: list[str]  # names of the files in the directory (checksums excluded)


class _Audit:
    def __init__(self, config: LakeConfig, report: VerifyReport) -> None:
        self.config = config
        self.root = config.root
        self.report = report
        self._dcat_graphs: dict[str, Any] = {}
        self._origins: dict[str, list[Finding]] = {}  # carried-from certificates, checked once

    def add(self, code: str, message: str, file: str | None = None,
            pointer: str | None = None, hint: str | None = None) -> None:
        self.report.findings.append(Finding(code, message, file, pointer, hint))

    # -- collecting ---------------------------------------------------------------------------

    def raw_files(self) -> list[raw.RawInfo]:
        infos = []
        for item in raw.iter_recorded(self.config):
            if isinstance(item, Finding):
                self.report.findings.append(item)
            else:
                infos.append(item)
        self.report.checked["raw_files"] = len(infos)
        return infos

    def processed_versions(self) -> list[_Version]:
        processed = self.config.dir("processed")
        versions: list[_Version] = []
        if not processed.is_dir():
            return versions
        for family_dir in sorted(processed.iterdir()):
            rel_family = self._rel(family_dir)
            if not family_dir.is_dir():
                self.add("unpromoted-processed", f"{rel_family} lies in processed outside any"
                         " family version", rel_family,
                         hint="processed holds only promoted versions: kfm-prov promote")
                continue
            for version_dir in sorted(family_dir.iterdir()):
                rel = self._rel(version_dir)
                if not version_dir.is_dir():
                    self.add("unpromoted-processed", f"{rel} lies in processed outside any"
                             " version", rel, hint="processed holds only promoted versions")
                    continue
                listed: dict[str, str] = {}
                if not (version_dir / CHECKSUMS).is_file():
                    self.add("processed-checksums-missing", f"version {family_dir.name}"
                             f" {version_dir.name} has no {CHECKSUMS}", f"{rel}/{CHECKSUMS}")
                else:
                    try:
                        listed = raw.read_checksums(version_dir / CHECKSUMS,
                                                    display=f"{rel}/{CHECKSUMS}")
                    except InputError as exc:
                        self.add("processed-checksums-invalid", exc.message, exc.file,
                                 exc.field)
                present = sorted(p.relative_to(version_dir).as_posix()
                                 for p in version_dir.rglob("*")
                                 if (p.is_file() or p.is_symlink())
                                 and p.relative_to(version_dir).as_posix() != CHECKSUMS)
                versions.append(_Version(family_dir.name, version_dir.name, rel, listed,
                                         present))
        self.report.checked["versions"] = len(versions)
        self.report.checked["processed_files"] = sum(len(v.present) for v in versions)
        return versions

    def hash_all(self, raws: list[raw.RawInfo], versions: list[_Version]) -> dict[str, str]:
        """Fresh digests of every present raw and processed file, in one parallel batch."""
        rels = [r.path for r in raws]
        rels += [f"{v.rel}/{name}" for v in versions for name in v.present]
        present = [rel for rel in dict.fromkeys(rels) if self._regular(rel)]
        return dict(zip(present, hash_files([self.root / rel for rel in present]), strict=True))

    # -- the checks ------------------------------------------------------------------------------

    def check_raw(self, raws: list[raw.RawInfo], fresh: dict[str, str]) -> None:
        for info in raws:
            now = fresh.get(info.path)
            if now is None:
                self.add("raw-missing", f"raw file {info.path} is gone (recorded in"
                         f" {info.manifest})", info.path,
                         hint="raw is write-once: restore it from the source")
            elif now != info.digest:
                self.add("raw-modified", f"raw file {info.path} changed: now"
                         f" sha256:{hex_of(now)[:12]}…, recorded"
                         f" sha256:{hex_of(info.digest)[:12]}…", info.path,
                         hint="raw is write-once; capture new bytes under a new path")

    def check_raw_labels(self, raws: list[raw.RawInfo]) -> None:
        """Every manifest's labels are what its label trail says (changed by relabel only)."""
        from kfm_prov.store.labels import check_trails

        checked = check_trails(self.config, raws)
        self.report.findings += checked.findings
        self.report.checked["label_trails"] = len(checked.trails)

    def check_processed(self, versions: list[_Version], fresh: dict[str, str]) -> None:
        for version in versions:
            for name, digest in sorted(version.listed.items()):
                rel = f"{version.rel}/{name}"
                now = fresh.get(rel)
                if now is None:
                    self.add("processed-missing", f"{rel} is listed in {CHECKSUMS} but gone",
                             rel)
                elif now != digest:
                    self.add("processed-modified", f"{rel} changed: now"
                             f" sha256:{hex_of(now)[:12]}…, promoted"
                             f" sha256:{hex_of(digest)[:12]}…", rel,
                             hint="promoted versions are immutable; promote a new version")
            for name in version.present:
                if name not in version.listed:
                    rel = f"{version.rel}/{name}"
                    self.add("processed-unlisted", f"{rel} is not in the version's"
                             f" {CHECKSUMS}", rel, hint="remove it; versions are immutable")

    def check_promotions(self, versions: list[_Version], fresh: dict[str, str]) -> None:
        """Each version has its records; each certificate still holds."""
        from kfm_prov.store.certificate import certificate_rel, certificates, verify_certificate
        from kfm_prov.store.published import item_path
        from kfm_prov.store.rebuild import index_for

        with index_for(self.config) as index:
            indexed = {(p.family, p.version) for p in index.promotions()}
        prov_rel = self.config.rel("prov")
        on_disk = {(v.family, v.version): v for v in versions}
        certified: dict[tuple[str, str], str] = {}
        for path in certificates(self.config):
            rel = self._rel(path)
            key = (path.parent.name, path.name.removesuffix(".certificate.json"))
            certified[key] = rel
        self.report.checked["certificates"] = len(certified)
        for key in sorted(set(on_disk) | set(certified)):
            family, version = key
            cert = certified.get(key)
            version_rel = f"{self.config.rel('processed')}/{family}/{version}"
            bundle = f"{prov_rel}/{family}/{version}.json"
            item = item_path(family, version, self.config.rel("stac"))
            if cert is None:
                promoted = key in indexed or self._regular(bundle) or self._regular(item)
                if promoted:
                    self.add("missing-certificate", f"{family} {version} has no certificate",
                             certificate_rel(self.config, family, version))
                else:
                    self.add("unpromoted-processed", f"{version_rel} was never promoted: no"
                             " certificate, PROV bundle or STAC item", version_rel,
                             hint="processed holds only what `kfm-prov promote` wrote")
                    continue
            else:
                if key not in on_disk:
                    self.add("processed-missing", f"the version directory of {family}"
                             f" {version} is gone", version_rel)
                for finding in verify_certificate(self.config, cert, fresh,
                                                  self.report.notes,
                                                  verified_origins=self._origins):
                    self.add("certificate-broken", f"the certificate of {family} {version}"
                             f" no longer holds: {finding.message} [{finding.code}]", cert,
                             finding.pointer)
            if not self._regular(item):
                self.add("missing-stac-item", f"{family} {version} has no STAC item", item)
            if not self._regular(bundle):
                self.add("missing-bundle", f"{family} {version} has no PROV bundle", bundle)
            self._check_dcat(family, version, on_disk.get(key), cert)

    def check_attestations(self, versions: list[_Version], fresh: dict[str, str],
                           trusted: Sequence[PublicKey], required: bool) -> None:
        """Every ``.intoto.jsonl``: signed by a trusted key, about the files as they are."""
        from kfm_prov.publish.attest import attestation_rel, verify_version
        from kfm_prov.publish.promote import existing_versions
        from kfm_prov.store.certificate import certificates

        keys = {(p.parent.name, p.name.removesuffix(".certificate.json"))
                for p in certificates(self.config)} | {(v.family, v.version) for v in versions}
        prov_dir = self.config.dir("prov")
        signed = {(p.parent.name, p.name.removesuffix(".intoto.jsonl"))
                  for p in prov_dir.glob("*/*.intoto.jsonl")} if prov_dir.is_dir() else set()
        latest: dict[str, str | None] = {}
        for family in {f for f, _ in keys}:
            ordered = existing_versions(self.config, family)
            latest[family] = ordered[-1] if ordered else None
        for family, version in sorted(signed - keys):
            rel = attestation_rel(self.config, family, version)
            self.add("attestation-orphan", f"an attestation for {family} {version}, which"
                     " was never promoted", rel, hint="remove it")
        for family, version in sorted(keys):
            if (family, version) not in signed:
                if required:
                    self.add("attestation-missing", f"{family} {version} is not signed",
                             attestation_rel(self.config, family, version),
                             hint=f"kfm-prov attest {family} {version}")
                continue
            self.report.findings += verify_version(
                self.config, family, version, trusted, fresh,
                check_dcat=latest.get(family) == version)
        self.report.checked["attestations"] = len(signed & keys)
        self._check_run_signatures(trusted)

    def _check_run_signatures(self, trusted: Sequence[PublicKey]) -> None:
        from kfm_prov.store.evidence import evidence_files
        from kfm_prov.store.rebuild import index_for
        from kfm_prov.store.signing import RUN_ATTESTATION, run_signature_problem

        with index_for(self.config) as index:
            runs = [r for r in index.runs()
                    if (self.root / r.run_dir / RUN_ATTESTATION).is_file()]
            outputs: dict[str, list[tuple[str, str]]] = {}
            for row in index.files([r.run_id for r in runs], "out"):
                outputs.setdefault(row.run_id, []).append((row.path, row.digest))
        for run in runs:
            problem = run_signature_problem(self.config, run.run_dir, run.run_id,
                                            outputs.get(run.run_id, []),
                                            evidence_files(self.config, run.run_dir), trusted)
            if problem is not None:
                self.add("run-signature-invalid", problem.message, problem.file)
        self.report.checked["signed_runs"] = len(runs)

    def _check_dcat(self, family: str, version: str, on_disk: _Version | None,
                    cert: str | None) -> None:
        from kfm_prov.publish.dcat import distribution_iri

        names = self._product_names(version, cert) or (sorted(on_disk.listed)
                                                        if on_disk else [])
        dcat_rel = f"{self.config.rel('dcat')}/{family}.ttl"
        graph = self._dcat_graph(dcat_rel)
        for name in names:
            iri = distribution_iri(self.config.namespace, family, version, name)
            if graph is None or (iri, None, None) not in graph:
                self.add("missing-dcat-distribution", f"{family} {version} {name} has no DCAT"
                         f" distribution <{iri}>", dcat_rel)

    def _product_names(self, version: str, cert: str | None) -> list[str]:
        if cert is None:
            return []
        try:
            data = jsonio.read_json(self.root / cert, display=cert)
            return sorted(p["path"].rsplit(f"/{version}/", 1)[-1] for p in data["products"])
        except (InputError, KeyError, TypeError, AttributeError):
            return []  # reported as certificate-broken

    def _dcat_graph(self, rel: str) -> Any:
        """The family's DCAT graph, parsed once; None when missing or unreadable."""
        cache = self._dcat_graphs
        if rel not in cache:
            cache[rel] = None
            if self._regular(rel):
                from rdflib import Graph

                graph = Graph()
                try:
                    graph.parse(self.root / rel, format="turtle")
                    cache[rel] = graph
                except Exception as exc:  # any parser failure is the file's fault
                    self.add("dcat-invalid", f"cannot read the DCAT Turtle:"
                             f" {' '.join(str(exc).split())[:200]}", rel)
        return cache[rel]

    def check_stac(self, fresh: dict[str, str]) -> None:
        """Asset and link hrefs that resolve to a missing file; assets whose file:checksum
        disagrees with the file's fresh digest."""
        stac_dir = self.config.dir("stac")
        documents = sorted(stac_dir.rglob("*.json")) if stac_dir.is_dir() else []
        self.report.checked["stac_documents"] = len(documents)
        for path in documents:
            rel = self._rel(path)
            try:
                data = jsonio.read_json(path, display=rel)
            except InputError as exc:
                self.add("stac-invalid", exc.message, rel, exc.field)
                continue
            if not isinstance(data, dict):
                self.add("stac-invalid", "not a STAC object", rel)
                continue
            assets = data.get("assets") or {}
            for key, asset in sorted(assets.items() if isinstance(assets, dict) else []):
                target = self._target(asset, rel)
                if target is None:
                    continue
                pointer = f"/assets/{key}/href"
                if not (self.root / target).exists():
                    self.add("stac-dangling-asset", f"asset {key!r} points at {target},"
                             " which is missing", rel, pointer)
                    continue
                expected = asset.get("file:checksum") if isinstance(asset, dict) else None
                now = fresh.get(target)
                if isinstance(expected, str) and now and expected != "1220" + hex_of(now):
                    self.add("stac-checksum-mismatch", f"asset {key!r}: {target} no longer"
                             " matches file:checksum", rel, f"/assets/{key}/file:checksum")
            links = data.get("links") or []
            for number, link in enumerate(links if isinstance(links, list) else []):
                target = self._target(link, rel)
                if target is not None and not (self.root / target).exists():
                    self.add("stac-dangling-link", f"link {link.get('rel')!r} points at"
                             f" {target}, which is missing", rel, f"/links/{number}/href")

    # -- helpers ---------------------------------------------------------------------------------

    def _target(self, obj: Any, base_rel: str) -> str | None:
        """Root-relative path an href names, or None for URLs and paths outside the lake."""
        href = obj.get("href") if isinstance(obj, dict) else None
        if not isinstance(href, str) or "://" in href or href.startswith(("/", "#")) \
                or not href:
            return None
        rel = posixpath.normpath(posixpath.join(posixpath.dirname(base_rel),
                                                href.split("#", 1)[0]))
        return None if rel.startswith("../") or rel == ".." else rel

    def _regular(self, rel: str) -> bool:
        path = self.root / rel
        return path.is_file() and not path.is_symlink()

    def _rel(self, path: Path) -> str:
        return PurePosixPath(path.relative_to(self.root).as_posix()).as_posix()


# --- one PROV document -------------------------------------------------------------------------

@dataclass(frozen=True)
class ProvCheck:
    """``kfm-prov prov-check``: a PROV document's PROV-CONSTRAINTS (and schema) violations."""

    file: str
    records: int
    bundles: int
    violations: tuple[Any, ...]  # constraints.ConstraintViolation

    @property
    def ok(self) -> bool:
        return not self.violations

    @property
    def constraints(self) -> list[str]:
        return sorted({v.constraint for v in self.violations},
                      key=lambda c: (not c[1:].isdigit(), int(c[1:]) if c[1:].isdigit() else 0,
                                     c))

    @property
    def summary(self) -> str:
        return f"{self.records} record(s), {self.bundles} bundle(s)"

    def to_dict(self) -> dict[str, Any]:
        return {"file": self.file, "ok": self.ok, "records": self.records,
                "bundles": self.bundles, "violations": [v.to_dict() for v in self.violations]}


def check_prov_document(path: Path) -> ProvCheck:
    """Read any PROV document (format by extension, else sniffed) and check it.

    PROV-JSON is also checked against the PROV-JSON schema. An unreadable file raises
    ``InputError`` (exit 2); violations are returned, never raised.
    """
    from kfm_prov.prov.constraints import check_constraints, load_prov_document, validate_prov_json

    doc = load_prov_document(path)
    violations = list(check_constraints(doc))
    head = path.read_bytes()[:4096].lstrip()
    if path.suffix.lower() == ".json" or (
            path.suffix.lower() not in (".jsonld",) and head.startswith(b"{")
            and b'"@context"' not in head and b'"@graph"' not in head):
        violations = validate_prov_json(jsonio.loads(path.read_bytes(), file=str(path))) \
            + violations
    records = sum(len(list(scope.get_records())) for scope in (doc, *doc.bundles))
    return ProvCheck(str(path), records, len(list(doc.bundles)), tuple(violations))
