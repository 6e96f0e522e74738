"""Which key signs, which keys are trusted, and signed statements for runs.

A run signed at capture carries ``<run_dir>/run.intoto.jsonl``: a DSSE envelope of an
in-toto v1 Statement with a SLSA provenance v1 predicate whose subjects are the run's
outputs, whose resolved dependencies are its inputs and its pipeline at its commit, and
whose byproducts are its receipts, ``prov.json`` and logs by digest. Under the policy
``require_signed_runs`` the gate asks ``run_signature_problem`` of every run of a closure:
a receipt edited (and re-recorded, so the index agrees) after signing no longer matches.

Layering: store (it takes evidence lists from its callers, and imports nothing above
``store``); promotion statements live in ``publish.attest``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from kfm_prov import __version__
from kfm_prov.config import LakeConfig
from kfm_prov.core import dsse, jsonio
from kfm_prov.core.keys import PublicKey, SigningKey, load_public_key, load_signing_key
from kfm_prov.errors import CheckFailed, InputError
from kfm_prov.store.digests import hash_files, hex_of

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PROVENANCE_TYPE = "https://slsa.dev/provenance/v1"
VSA_TYPE = "https://slsa.dev/verification_summary/v1"
BUILD_TYPE_BASE = "https://kfm.example.org/kfm-prov/buildtypes/"
RUN_BUILD_TYPE = BUILD_TYPE_BASE + "run/v1"
BUILDER_ID = "https://kfm.example.org/kfm-prov/builder"
RUN_ATTESTATION = "run.intoto.jsonl"


# --- keys of a lake ------------------------------------------------------------------------

def signing_key(config: LakeConfig) -> SigningKey | None:
    """The configured private key, checked (outside the lake, 0600, Ed25519); None if none.

    A key that is configured but unusable is an error, never a silent unsigned write.
    """
    path = config.signing_key_path()
    if path is None:
        return None
    return load_signing_key(path, lake_root=config.root)


def trusted_keys(config: LakeConfig, extra: Iterable[PublicKey] = ()) -> list[PublicKey]:
    """``[trust] keys`` plus ``extra`` (``--key``), de-duplicated by key id."""
    keys = {k.keyid: k for k in (load_public_key(p, source="trusted public key")
                                 for p in config.trusted_key_paths())}
    for key in extra:
        keys.setdefault(key.keyid, key)
    return list(keys.values())


# --- statements ------------------------------------------------------------------------------

def descriptor(name: str, digest: str, **extra: Any) -> dict[str, Any]:
    """An in-toto ResourceDescriptor for a file: name and sha256 (hex, no prefix)."""
    out: dict[str, Any] = {"name": name, "digest": {"sha256": hex_of(digest)}}
    out.update({k: v for k, v in extra.items() if v not in (None, {}, [])})
    return out


def pipeline_descriptor(pipeline_id: str, commit: str) -> dict[str, Any]:
    """The pipeline at its commit; a commit that is not a plain hash goes in annotations."""
    is_hash = len(commit) in (40, 64) and all(c in "0123456789abcdef" for c in commit)
    out: dict[str, Any] = {"name": pipeline_id, "uri": f"kfm-pipeline:{pipeline_id}"}
    if is_hash:
        out["digest"] = {"gitCommit": commit}
    else:
        out["annotations"] = {"git_commit": commit}
    return out


def statement_bytes(subjects: Sequence[dict[str, Any]], predicate_type: str,
                    predicate: dict[str, Any]) -> bytes:
    """The statement as RFC 8785 canonical JSON: same content, same bytes."""
    import rfc8785

    return rfc8785.dumps({"_type": STATEMENT_TYPE, "subject": list(subjects),
                          "predicateType": predicate_type, "predicate": predicate})


# --- runs ------------------------------------------------------------------------------------

def run_statement(run_dir: str, receipts: Any, evidence: dict[str, str]) -> bytes:
    """SLSA provenance of one run. ``evidence`` maps receipt/log paths to fresh digests."""
    record, manifest = receipts.record, receipts.manifest
    subjects = sorted((descriptor(o.path, o.digest) for o in manifest.outputs),
                      key=lambda d: d["name"])
    dependencies = [pipeline_descriptor(record.pipeline_id, record.git_commit)]
    dependencies += sorted((descriptor(i.path, i.digest, annotations={"role": i.role})
                            for i in manifest.inputs), key=lambda d: d["name"])
    predicate = {
        "buildDefinition": {
            "buildType": RUN_BUILD_TYPE,
            "externalParameters": {"pipeline": record.pipeline_id,
                                   "family": record.dataset_family,
                                   "parameters": manifest.params,
                                   "spec_hash": manifest.spec_hash},
            "resolvedDependencies": dependencies,
        },
        "runDetails": {
            "builder": {"id": BUILDER_ID, "version": {"kfm-prov": __version__}},
            "metadata": {"invocationId": record.run_id, "startedOn": record.started_at,
                         **({"finishedOn": record.ended_at} if record.ended_at else {})},
            "byproducts": [descriptor(rel, digest) for rel, digest in sorted(evidence.items())],
        },
    }
    return statement_bytes(subjects, PROVENANCE_TYPE, predicate)


def sign_run(config: LakeConfig, run_dir: str, receipts: Any, evidence: list[str],
             key: SigningKey | None = None) -> str | None:
    """Write ``<run_dir>/run.intoto.jsonl`` when a key is configured; its path, or None.

    ``evidence`` is the run's receipts, ``prov.json`` and logs (``record.evidence_files``),
    hashed fresh here. Mutates only that one file.
    """
    key = key or signing_key(config)
    if key is None:
        return None
    digests = dict(zip(evidence, hash_files([config.root / rel for rel in evidence]),
                       strict=True))
    envelope = dsse.sign(run_statement(run_dir, receipts, digests), key)
    rel = f"{run_dir}/{RUN_ATTESTATION}"
    jsonio.atomic_write(config.root / rel, dsse.render_jsonl([envelope]))
    return rel


@dataclass(frozen=True)
class RunSignatureProblem:
    kind: str  # unsigned | invalid
    message: str
    file: str


def run_signature_problem(config: LakeConfig, run_dir: str, run_id: str,
                          outputs: Sequence[tuple[str, str]], evidence: list[str],
                          trusted: Sequence[PublicKey]) -> RunSignatureProblem | None:
    """Why the run's signature does not cover it now, or None when it does.

    The envelope must verify under a trusted key, name this run, list exactly the run's
    evidence files with their current bytes, and have every output (path, digest) the
    index holds as a subject.
    """
    rel = f"{run_dir}/{RUN_ATTESTATION}"
    if not (config.root / rel).is_file():
        return RunSignatureProblem("unsigned", f"run {run_id} is not signed", rel)
    try:
        envelopes = dsse.read_jsonl(config.root / rel, display=rel)
        verified = dsse.verify(envelopes[0], trusted, file=rel, line=1)
    except (InputError, CheckFailed) as exc:
        return RunSignatureProblem("invalid", f"run {run_id}: {exc.message}", rel)
    statement = verified.statement
    predicate = statement.get("predicate") or {}
    try:
        details = predicate["runDetails"]
        signed_id = details["metadata"]["invocationId"]
        signed_evidence = {b["name"]: b["digest"]["sha256"] for b in details["byproducts"]}
        signed_outputs = {(s["name"], s["digest"]["sha256"]) for s in statement["subject"]}
    except (KeyError, TypeError):
        return RunSignatureProblem("invalid", f"run {run_id}: the signed statement is not a"
                                   " kfm-prov run provenance", rel)
    if statement.get("predicateType") != PROVENANCE_TYPE or signed_id != run_id:
        return RunSignatureProblem("invalid", f"the signed statement is about run"
                                   f" {signed_id}, not {run_id}", rel)
    fresh = dict(zip(evidence, (hex_of(d) for d in hash_files(
        [config.root / r for r in evidence])), strict=True))
    changed = sorted(set(fresh.items()) ^ set(signed_evidence.items()))
    if changed:
        return RunSignatureProblem("invalid", f"run {run_id}: {changed[0][0]} differs from"
                                   " what was signed (edited, added or removed after"
                                   " signing)", changed[0][0])
    missing = sorted((p, d) for p, d in outputs if (p, hex_of(d)) not in signed_outputs)
    if missing:
        return RunSignatureProblem("invalid", f"run {run_id}: output {missing[0][0]} is not"
                                   " a subject of its signed statement", rel)
    return None
