"""Signed attestations of a promoted version: SLSA provenance and a verification summary.

``data/prov/<family>/<version>.intoto.jsonl`` holds two DSSE envelopes (one per line) of
in-toto v1 Statements whose subjects are the promoted files by sha256:

1. SLSA provenance v1: how the version was built (pipelines at their commits, every raw
   ancestor with its license and sensitivity, the run, kfm-prov as builder). The
   certificate, PROV bundle, STAC item and DCAT file are ``runDetails.byproducts``: they
   are records *about* the build, not the product a consumer downloads, so
   ``verify-artifact`` on them never passes for "a product", yet any edit to them after
   signing is seen.
2. SLSA Verification Summary v1: the gate (kfm-prov) verified the version against its
   checks and the lake's policy (by digest), with the certificate as input attestation.

Statements are built from the certificate and the bytes of the records alone, so the
same promotion gives the same payload bytes (RFC 8785), at promotion and by ``attest``.
Field names are SLSA's, exactly; see docs/attestations.md.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfm_prov import __version__
from kfm_prov.config import LakeConfig
from kfm_prov.core import dsse, jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.keys import PublicKey, SigningKey
from kfm_prov.errors import CheckFailed, InputError
from kfm_prov.store.digests import hash_files, hex_of, sha256_bytes
from kfm_prov.store.signing import (
    BUILD_TYPE_BASE,
    BUILDER_ID,
    PROVENANCE_TYPE,
    VSA_TYPE,
    descriptor,
    pipeline_descriptor,
    statement_bytes,
)

PROMOTION_BUILD_TYPE = BUILD_TYPE_BASE + "promotion/v1"
VERIFIER_ID = "https://kfm.example.org/kfm-prov/gate"
POLICY_URI = "https://kfm.example.org/kfm-prov/policy/gate/v1"
VERIFIED_LEVEL = "KFM_RECONSTRUCTIBLE_V1"
BYPRODUCTS = ("certificate", "prov-bundle", "stac-item", "dcat")


def attestation_rel(config: LakeConfig, family: str, version: str) -> str:
    return f"{config.rel('prov')}/{family}/{version}.intoto.jsonl"


def record_paths(config: LakeConfig, family: str, version: str) -> dict[str, str]:
    """The version's records bound as byproducts, by role.

    Paths only: the STAC item's comes from ``store.published``, so a ``verify`` of the
    attestations does not import pystac (``publish.stac``) for one f-string.
    """
    from kfm_prov.publish.dcat import dcat_path
    from kfm_prov.store.certificate import certificate_rel
    from kfm_prov.store.published import item_path

    return {"certificate": certificate_rel(config, family, version),
            "prov-bundle": f"{config.rel('prov')}/{family}/{version}.json",
            "stac-item": item_path(family, version, config.rel("stac")),
            "dcat": dcat_path(family, config.rel("dcat"))}


def record_digest(role: str, data: bytes) -> str:
    """How a record is bound: its bytes; a STAC item without its ``links``, which later
    versions extend (``store.certificate.stac_content_digest``, as the certificate does)."""
    if role != "stac-item":
        return sha256_bytes(data)
    from kfm_prov.store.certificate import stac_content_digest

    try:
        return stac_content_digest(jsonio.loads(data, file="STAC item"))
    except InputError:
        return sha256_bytes(b"not a STAC object")


def policy_document(config: LakeConfig, cert: Mapping[str, Any]) -> dict[str, Any]:
    """What the gate applied: its checks (as the certificate lists them) and the policy."""
    return {"checks": [{"id": c["id"], "title": c["title"]} for c in cert["checks"]],
            "policy": {"allow_dirty_commits": config.allow_dirty_commits,
                       "require_signed_runs": config.require_signed_runs,
                       "require_signatures": config.require_signatures}}


def statements(config: LakeConfig, cert: Mapping[str, Any], records: Mapping[str, bytes],
               params: Any, *, time_verified: str) -> list[bytes]:
    """The provenance and the summary of one version, as canonical JSON payloads.

    ``records`` maps each role of ``BYPRODUCTS`` to the file's bytes; ``params`` are the
    promoted run's published parameters (its ``run_manifest.json``).
    """
    import rfc8785

    family, version = cert["family"], cert["version"]
    paths = record_paths(config, family, version)
    subjects = sorted((descriptor(p["path"], p["digest"], mediaType=p.get("media_type"))
                       for p in cert["products"]), key=lambda d: d["name"])
    runs = cert["closure"]["runs"]
    promoted = next(r for r in runs if r["run_id"] == cert["run_id"])
    pipelines = sorted({(r["pipeline_id"], r["git_commit"]) for r in runs})
    dependencies = [pipeline_descriptor(p, c) for p, c in pipelines]
    raws = sorted((e for e in cert["closure"]["entities"] if e["kind"] == "raw"),
                  key=lambda e: (e["path"], e["digest"]))
    dependencies += [descriptor(e["path"], e["digest"], annotations={
        k: e[k] for k in ("license", "attribution", "sensitivity") if e.get(k)})
        for e in raws]
    # A product carried forward unchanged was built by an earlier promotion: it is an
    # input of this version, named with where it was first published and by which run.
    dependencies += sorted((descriptor(p["carried_from"]["path"], p["digest"], annotations={
        "role": "carried", "version": p["carried_from"]["version"],
        "run": p["carried_from"]["run_id"], "certificate": p["carried_from"]["certificate"]})
        for p in cert["products"] if isinstance(p.get("carried_from"), dict)),
        key=lambda d: d["name"])
    byproducts = [descriptor(paths[role], record_digest(role, records[role]),
                             annotations={"role": role}) for role in BYPRODUCTS]
    provenance = {
        "buildDefinition": {
            "buildType": PROMOTION_BUILD_TYPE,
            "externalParameters": {"pipeline": promoted["pipeline_id"], "parameters": params,
                                   "family": family, "version": version,
                                   "run": cert["run_id"]},
            "internalParameters": {"spec_hash": promoted["spec_hash"],
                                   "promotion_id": cert["promotion_id"],
                                   "runs": len(runs)},
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": BUILDER_ID, "version": {"kfm-prov": __version__}},
            "metadata": {"invocationId": cert["run_id"], "startedOn": promoted["started_at"],
                         "finishedOn": promoted["ended_at"] or promoted["started_at"]},
            "byproducts": byproducts,
        },
    }
    policy_digest = hashlib.sha256(rfc8785.dumps(policy_document(config, cert))).hexdigest()
    summary = {
        "verifier": {"id": VERIFIER_ID, "version": {"kfm-prov": __version__}},
        "timeVerified": time_verified,
        "resourceUri": f"{config.namespace}{family}/{version}",
        "policy": {"uri": POLICY_URI, "digest": {"sha256": policy_digest}},
        "inputAttestations": [{"uri": paths["certificate"],
                               "digest": byproducts[0]["digest"]}],
        "verificationResult": "PASSED",
        "verifiedLevels": [VERIFIED_LEVEL],
        "slsaVersion": "1.0",
    }
    return [statement_bytes(subjects, PROVENANCE_TYPE, provenance),
            statement_bytes(subjects, VSA_TYPE, summary)]


def render(key: SigningKey, payloads: Sequence[bytes]) -> bytes:
    return dsse.render_jsonl([dsse.sign(p, key) for p in payloads])


def run_params(config: LakeConfig, run_dir: str) -> Any:
    """The promoted run's parameters, as its manifest publishes them."""
    rel = f"{run_dir}/run_manifest.json"
    data = jsonio.read_json(config.root / rel, display=rel)
    return data.get("params", {}) if isinstance(data, dict) else {}


# --- signing an existing version ----------------------------------------------------------

def attest_version(config: LakeConfig, family: str, version: str, key: SigningKey, *,
                   latest: str | None) -> str:
    """Re-verify a promoted version, then write its ``.intoto.jsonl``; returns its path.

    ``latest`` is the family's newest version (the one whose DCAT file is current); the
    caller holds the publish lock. Refuses (exit 1, nothing written) when the version
    does not verify (certificate, files, records present); an existing attestation is
    replaced (a new key, say).
    """
    from kfm_prov.core.timeutil import now_utc
    from kfm_prov.store.certificate import verify_certificate

    paths = record_paths(config, family, version)
    if not (config.root / paths["certificate"]).is_file():
        raise InputError(f"{family} {version} is not a promoted version (no certificate)",
                         file=paths["certificate"], hint="see `kfm-prov versions`")
    problems = verify_certificate(config, paths["certificate"])
    problems += _processed_problems(config, family, version)
    missing = [rel for rel in paths.values() if not (config.root / rel).is_file()]
    problems += [Finding("file-missing", f"{rel} is gone", rel) for rel in missing]
    if problems:
        raise CheckFailed.from_findings(f"{family} {version} does not verify; not signed",
                                        problems)
    if latest != version:
        raise CheckFailed(f"the DCAT file of {family} was rewritten by {latest}; only the"
                          " newest version can be attested later", file=paths["dcat"],
                          hint=f"kfm-prov attest {family} {latest}")
    cert = jsonio.read_json(config.root / paths["certificate"], display=paths["certificate"])
    records = {role: (config.root / rel).read_bytes() for role, rel in paths.items()}
    run_dir = next(r["run_dir"] for r in cert["closure"]["runs"]
                   if r["run_id"] == cert["run_id"])
    payloads = statements(config, cert, records, run_params(config, run_dir),
                          time_verified=now_utc())
    rel = attestation_rel(config, family, version)
    jsonio.atomic_write(config.root / rel, render(key, payloads))
    return rel


def _processed_problems(config: LakeConfig, family: str, version: str) -> list[Finding]:
    from kfm_prov.store.raw import read_checksums

    version_dir = config.dir("processed") / family / version
    rel = f"{config.rel('processed')}/{family}/{version}/checksums.sha256"
    try:
        listed = read_checksums(version_dir / "checksums.sha256", display=rel)
    except InputError as exc:
        return [Finding("processed-checksums-invalid", exc.message, rel)]
    names = sorted(listed)
    fresh = hash_files([version_dir / n for n in names]) if all(
        (version_dir / n).is_file() for n in names) else []
    if len(fresh) != len(names) or any(a != listed[n] for n, a in zip(names, fresh,
                                                                        strict=True)):
        return [Finding("processed-modified", f"{family} {version} no longer matches its"
                        " checksums", rel)]
    return []


# --- verifying -------------------------------------------------------------------------------

@dataclass
class Attested:
    """A verified attestation: the two statements and who signed them."""

    file: str
    keyid: str
    provenance: dict[str, Any]
    summary: dict[str, Any]
    subjects: dict[str, str] = field(default_factory=dict)  # name → sha256 hex

    @property
    def byproducts(self) -> dict[str, dict[str, Any]]:
        items = self.provenance["predicate"]["runDetails"]["byproducts"]
        return {b["annotations"]["role"]: b for b in items}


def read_attestation(path: Path, display: str, trusted: Sequence[PublicKey]) -> Attested:
    """Both envelopes verified under a trusted key, and the statements shaped as ours.

    ``InputError`` for an unreadable file, ``CheckFailed`` for a bad or untrusted
    signature or a statement that is not a PASSED kfm-prov pair over the same subjects.
    """
    envelopes = dsse.read_jsonl(path, display=display)
    verified = [dsse.verify(e, trusted, file=display, line=n)
                for n, e in enumerate(envelopes, start=1)]
    by_type: dict[str, dsse.Verified] = {}
    for v in verified:
        by_type.setdefault(str(v.statement.get("predicateType")), v)
    if PROVENANCE_TYPE not in by_type or VSA_TYPE not in by_type:
        raise CheckFailed("the attestation lacks the SLSA provenance or the verification"
                          " summary", file=display)
    provenance, summary = by_type[PROVENANCE_TYPE].statement, by_type[VSA_TYPE].statement
    try:
        subjects = {s["name"]: s["digest"]["sha256"] for s in provenance["subject"]}
        summary_subjects = {s["name"]: s["digest"]["sha256"] for s in summary["subject"]}
        result = summary["predicate"]["verificationResult"]
        roles = {b["annotations"]["role"] for b in
                 provenance["predicate"]["runDetails"]["byproducts"]}
    except (KeyError, TypeError, AttributeError):
        raise CheckFailed("the signed statements are not kfm-prov attestations",
                          file=display) from None
    if summary_subjects != subjects:
        raise CheckFailed("the verification summary is about other files than the"
                          " provenance", file=display)
    if result != "PASSED":
        raise CheckFailed(f"the verification summary says {result!r}", file=display)
    if not set(BYPRODUCTS) <= roles:
        raise CheckFailed("the provenance does not bind the version's records", file=display)
    return Attested(display, by_type[PROVENANCE_TYPE].keyid, provenance, summary, subjects)


def verify_version(config: LakeConfig, family: str, version: str,
                   trusted: Sequence[PublicKey], fresh: Mapping[str, str], *,
                   check_dcat: bool) -> list[Finding]:
    """Findings for one version's attestation against the trusted keys and the files.

    The subjects must be exactly the version's files (fresh digests), and each record
    (certificate, PROV bundle, STAC item; the family's DCAT file when ``check_dcat``, as
    each promotion rewrites it) must have the bytes that were signed.
    """
    rel = attestation_rel(config, family, version)
    try:
        attested = read_attestation(config.root / rel, rel, trusted)
    except (InputError, CheckFailed) as exc:
        code = "attestation-invalid" if isinstance(exc, InputError) else (
            "attestation-untrusted" if "untrusted" in exc.message
            or "no trusted" in exc.message else "attestation-signature")
        return [Finding(code, exc.message, rel, exc.field)]
    findings = []
    prefix = f"{config.rel('processed')}/{family}/{version}/"
    on_disk = {k: hex_of(v) for k, v in fresh.items()
               if k.startswith(prefix) and not k.endswith("/checksums.sha256")}
    for name in sorted(set(on_disk) | set(attested.subjects)):
        if on_disk.get(name) != attested.subjects.get(name):
            what = ("is not a signed subject" if name not in attested.subjects else
                    "is gone" if name not in on_disk else "differs from its signed digest")
            findings.append(Finding("attestation-subject-mismatch", f"{name} {what}", name))
    paths = record_paths(config, family, version)
    roles = [r for r in BYPRODUCTS if r != "dcat" or check_dcat]
    present = [r for r in roles if (config.root / paths[r]).is_file()]
    digests = {r: record_digest(r, (config.root / paths[r]).read_bytes()) for r in present}
    for role in roles:
        signed = attested.byproducts[role]
        now = digests.get(role)
        if signed.get("name") != paths[role] or now is None \
                or hex_of(now) != signed["digest"]["sha256"]:
            findings.append(Finding("attestation-record-mismatch", f"the {role} of {family}"
                                    f" {version} is not the one that was signed (edited"
                                    " after signing)", paths[role]))
    return findings


@dataclass(frozen=True)
class ArtifactReport:
    """What ``verify-artifact`` found for one downloaded file."""

    file: str
    digest: str
    attestation: str
    keyid: str
    subject: str
    family: str
    version: str
    verified_levels: list[str]
    time_verified: str
    sources: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"ok": True, **self.__dict__}


def verify_artifact(file: Path, attestation: Path, keys: Sequence[PublicKey]) -> ArtifactReport:
    """Offline: the file's sha256 is a subject of a validly signed, PASSED attestation.

    Needs no lake. ``CheckFailed`` (exit 1) when the file is not a subject or a
    signature fails; ``InputError`` (exit 2) for unreadable input.
    """
    if not file.is_file():
        raise InputError("file not found", file=str(file))
    if not keys:
        raise InputError("give the signer's public key with --key PUB.pem", field="--key")
    attested = read_attestation(attestation, str(attestation), keys)
    digest = hex_of(hash_files([file])[0])
    names = sorted(n for n, d in attested.subjects.items() if d == digest)
    if not names:
        raise CheckFailed(f"sha256:{digest[:16]}… is not a subject of the attestation: the"
                          " file is not the product that was signed", file=str(file),
                          hint=f"compare with {attestation}")
    params = attested.provenance["predicate"]["buildDefinition"]["externalParameters"]
    sources = [{"name": d.get("name"), "sha256": d["digest"].get("sha256"),
                **d.get("annotations", {})}
               for d in attested.provenance["predicate"]["buildDefinition"][
                   "resolvedDependencies"] if "sha256" in d.get("digest", {})]
    summary = attested.summary["predicate"]
    return ArtifactReport(str(file), f"sha256:{digest}", str(attestation), attested.keyid,
                          names[0], str(params.get("family")), str(params.get("version")),
                          list(summary.get("verifiedLevels", [])),
                          str(summary.get("timeVerified")), sources)
