"""A promoted version as the catalog writers (STAC, DCAT) see it.

The promotion builds one ``Release`` after the gate passed; the writers render bytes from
it and never touch the disk themselves, so the promotion can stage every file and commit
them in one atomic step.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kfm_prov.config import CatalogMetadata, FamilyMetadata


@dataclass(frozen=True)
class CarriedFrom:
    """Where a product carried forward unchanged into a later version was first promoted.

    A version is a snapshot of its family: products of the previous version that the new
    run does not make (and the user did not ``--drop``) are copied into it byte for byte.
    Their lineage is that first promotion's (its run, its certificate), never the new
    run's, so this names it; a product carried twice still names the first.
    """

    version: str  # the version that first published these bytes under this name
    run_id: str  # the run whose product they were
    path: str  # root-relative file of that version
    certificate: str  # root-relative certificate of that version

    def to_dict(self) -> dict[str, str]:
        return {"version": self.version, "run_id": self.run_id, "path": self.path,
                "certificate": self.certificate}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CarriedFrom:
        return cls(str(data["version"]), str(data["run_id"]), str(data["path"]),
                   str(data["certificate"]))


@dataclass(frozen=True)
class CarriedProduct:
    """A product of the family's latest version that a promotion carries forward.

    ``entry`` is that version's certificate entry (path, source_path, digest, size,
    media type, sensitivity), which the gate verified; ``previous`` is the file copied.
    """

    name: str  # the path inside the version directory, e.g. "parcels.geojson"
    previous: str  # root-relative: data/processed/<family>/<previous version>/<name>
    entry: Mapping[str, Any]
    origin: CarriedFrom


@dataclass(frozen=True)
class ReleaseFile:
    """One promoted file."""

    path: str  # POSIX, relative to the lake root: data/processed/<family>/<version>/<name>
    digest: str  # "sha256:<64 lowercase hex>"
    size: int
    media_type: str
    role: str = "data"
    #: Set when the file is carried forward unchanged from an earlier version.
    carried_from: CarriedFrom | None = None


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
    #: Names of the previous version's products the user left out (``promote --drop``).
    dropped: tuple[str, ...] = ()
