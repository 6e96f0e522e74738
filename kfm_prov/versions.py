"""``kfm-prov versions``: every promoted version of a family, as its records say.

Reads the certificates (what was promoted, from which run, when), the PROV bundle (who
asked for it, when names are published) and whether an attestation sits beside them.
The index only lists which versions exist; a version whose certificate cannot be read is
still listed, with ``problem`` saying why (``kfm-prov verify`` says more).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.errors import InputError, NotFoundError
from kfm_prov.store.certificate import certificate_rel, read_certificate
from kfm_prov.store.rebuild import index_for


@dataclass(frozen=True)
class VersionInfo:
    family: str
    version: str
    promoted_at: str
    run_id: str
    products: list[dict[str, Any]] = field(default_factory=list)
    promoted_by: str | None = None  # only when the lake publishes names (prov.publish_user)
    certificate: str | None = None
    attestation: str | None = None  # root-relative .intoto.jsonl, when present
    problem: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def list_versions(config: LakeConfig, family: str | None = None) -> list[VersionInfo]:
    """Every version (of ``family``), oldest promotion first. Reads only."""
    with index_for(config) as index:
        rows = index.promotions(family)
    if family is not None and not rows:
        raise NotFoundError(f"family {family!r} has no promoted version",
                            hint="see `kfm-prov versions` for every family")
    found: dict[tuple[str, str], Any] = {}
    for row in sorted(rows, key=lambda r: (r.promoted_at, r.family, r.version)):
        found.setdefault((row.family, row.version), row)
    return [_version(config, row) for row in found.values()]


def _version(config: LakeConfig, row: Any) -> VersionInfo:
    cert_rel = row.certificate or certificate_rel(config, row.family, row.version)
    attestation = f"{config.rel('prov')}/{row.family}/{row.version}.intoto.jsonl"
    signed = attestation if (config.root / attestation).is_file() else None
    try:
        cert = read_certificate(config, cert_rel)
    except InputError as exc:
        return VersionInfo(row.family, row.version, row.promoted_at, row.run_id,
                           certificate=cert_rel, attestation=signed, problem=exc.message)
    products: list[dict[str, Any]] = [
        {k: p[k] for k in ("path", "digest", "size", "sensitivity", "carried_from") if k in p}
        for p in cert.products]
    return VersionInfo(row.family, row.version, cert.issued_at, cert.run_id, products,
                       _requester(config, row.bundle), cert_rel, signed)


def _requester(config: LakeConfig, bundle: str | None) -> str | None:
    """The requester's name from the version's PROV bundle (published only by choice)."""
    if not bundle or not (config.root / bundle).is_file():
        return None
    try:
        data = jsonio.read_json(config.root / bundle, display=bundle)
    except InputError:
        return None
    for content in (data.get("bundle") or {}).values():
        for agent_id, agent in sorted((content.get("agent") or {}).items()):
            if agent_id.startswith("kfm:person-") and isinstance(agent, dict):
                name = agent.get("kfm:name")
                return name if isinstance(name, str) else None
    return None
