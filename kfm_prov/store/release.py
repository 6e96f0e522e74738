"""A promoted version as the catalog writers (STAC, DCAT) see it.

The promotion builds one ``Release`` after the gate passed; the writers render bytes from
it and never touch the disk themselves, so the promotion can stage every file and commit
them in one atomic step.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from kfm_prov.config import CatalogMetadata, FamilyMetadata


@dataclass(frozen=True)
class ReleaseFile:
    """One promoted file."""

    path: str  # POSIX, relative to the lake root: data/processed/<family>/<version>/<name>
    digest: str  # "sha256:<64 lowercase hex>"
    size: int
    media_type: str
    role: str = "data"


@dataclass(frozen=True)
class Release:
    """Everything the catalogs need to describe one promoted version of a family."""

    family: str
    version: str  # e.g. "v1"
    run_id: str  # the ULID of the run whose products were promoted (uppercase)
    promotion_id: str  # local part of the promotion activity id in the PROV namespace
    promoted_at: str  # RFC 3339 UTC, e.g. "2026-11-26T10:00:00Z"
    run_started_at: str
    run_ended_at: str
    pipeline_id: str
    git_commit: str
    spec_hash: str  # "sha256:<hex>"
    license: str  # a single SPDX id, or "other"
    attribution: str
    sensitivity: str  # public | restricted | sensitive-location
    files: tuple[ReleaseFile, ...]
    prov_bundle_path: str  # relative to root: data/prov/<family>/<version>.json
    certificate_path: str  # relative to root: data/prov/<family>/<version>.certificate.json
    namespace: str  # the PROV namespace IRI, e.g. "https://kfm.example.org/prov/"
    predecessor_version: str | None = None
    derived_from_items: tuple[str, ...] = ()  # root-relative paths of STAC items of inputs
    software: dict[str, str] = field(default_factory=dict)  # {"kfm-prov": "0.1.0", ...}
    lineage: str = ""  # one sentence for processing:lineage
    title: str | None = None
    description: str | None = None
    stac_dir: str = "data/stac"  # the lake's configured folders, root-relative
    processed_dir: str = "data/processed"
    metadata: FamilyMetadata = field(default_factory=FamilyMetadata)  # [families.NAME]
    catalog: CatalogMetadata = field(default_factory=CatalogMetadata)  # [catalog]
