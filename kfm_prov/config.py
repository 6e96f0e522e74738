"""The lake's layout and policy, read from ``kfm-prov.toml`` (SPEC §2).

KFM's own documents disagree on where things live, so every path is configurable and
nothing else in the package hard-codes one: code asks ``LakeConfig`` for a directory.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import math
import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfm_prov.errors import InputError, NotFoundError

CONFIG_NAME = "kfm-prov.toml"
ROOT_ENV = "KFM_PROV_ROOT"
INDEX_URL_ENV = "KFM_PROV_INDEX_URL"
_LAKE_NAME = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
SIGNING_KEY_ENV = "KFM_PROV_SIGNING_KEY"

DEFAULT_PATHS: dict[str, str] = {
    "raw": "data/raw",
    "work": "data/work",
    "runs": "data/work/runs",
    "staging": "data/work/staging",
    "cache": "data/work/cache/kfm-prov",
    "processed": "data/processed",
    "stac": "data/stac",
    "prov": "data/prov",
    "dcat": "data/catalog/dcat",
    "openlineage": "data/work/openlineage",
}
DEFAULT_NAMESPACE = "https://kfm.example.org/prov/"
SENSITIVITIES = ("public", "restricted", "sensitive-location")
SENSITIVITY_RANK = {name: rank for rank, name in enumerate(SENSITIVITIES)}
UNKNOWN_SENSITIVITY = "restricted"  # a capture that says nothing (SPEC §2)
INPUT_ROLES = ("primary", "auxiliary", "config")
OUTPUT_ROLES = ("intermediate", "product")

CONFIG_TEMPLATE = """\
# kfm-prov configuration for this lake. Every key is optional; the values shown are the
# defaults. Paths are POSIX paths relative to the directory holding this file.

[paths]
raw = "data/raw"                       # write-once captures, manifest.yml + checksums.sha256
work = "data/work"                     # scratch and receipts; never served
runs = "data/work/runs"                # one directory per run: <runs>/<family>/<run_id>/
staging = "data/work/staging"          # unpacked downloads; never a valid input to promote
cache = "data/work/cache/kfm-prov"     # digest cache and lineage index (disposable, rebuildable)
processed = "data/processed"           # promoted, immutable versions
stac = "data/stac"                     # STAC catalog, one collection per family
prov = "data/prov"                     # PROV bundles and reconstructibility certificates
dcat = "data/catalog/dcat"             # DCAT dataset per family (Turtle)
openlineage = "data/work/openlineage"  # journal of received OpenLineage events (kfm-prov serve)

[prov]
# IRI of the namespace our PROV identifiers live in (prefix "kfm").
namespace = "https://kfm.example.org/prov/"
# Put the runner's user name into PROV documents, which get published. Off by default:
# it is personal data. Run records in data/work keep it either way.
publish_user = false
# Run parameters whose values PROV documents may publish (when the secret detector finds
# nothing in them); every other value is published as a salted sha256 digest. The run
# manifest in data/work keeps every value, scrubbed of secrets.
public_params = []                     # e.g. ["year", "crs", "grid_degrees"]

[policy]
# Promote products of runs whose pipeline repository had uncommitted changes. Off by
# default: such code cannot be checked out again, so the product cannot be rebuilt.
allow_dirty_commits = false
# A run younger than this is never removed by `kfm-prov gc`.
gc_min_age_hours = 24
# Where the gate finds a checkout of a repository that a run names only by its URL (runs
# from OpenLineage events): repository URL = local path. Without one, such a run's commit
# cannot be checked and is refused (unknown-commit).
checkouts = {}
# Refuse to promote when a run of the closure lacks a valid signature by a trusted key.
require_signed_runs = false
# `kfm-prov verify` fails for a version without a valid signed attestation.
require_signatures = false

[openlineage]
# OpenLineage jobs become runs of a family and pipeline. The first rule whose globs match
# the job's namespace and name applies; without one, the family is the job namespace
# (made a directory name) and the pipeline id is "<namespace>/<name>".
# [[openlineage.jobs]]
# namespace = "airflow-prod"          # glob, default "*"
# name = "parcels_dag.*"              # glob, default "*"
# family = "parcels"
# pipeline = "{name}"                 # {namespace} and {name} are replaced
# Job namespace of the runs `kfm-prov export --format openlineage` writes.
export_namespace = "kfm-prov"

[index]
# Where the lineage index lives. Absent: an SQLite file under the cache directory. A
# PostgreSQL URL shares one index between runners on many machines (see docs/scaling.md);
# $KFM_PROV_INDEX_URL overrides it. Keep passwords out of this file: use PGPASSWORD,
# ~/.pgpass or password_file.
# url = "postgresql://kfm@db.example.org:5432/lineage"
# The lake's name inside that database (one schema per lake). Default: derived from the
# lake's path, so set it when machines mount the lake at different paths.
# lake = "kfm_main"
# password_file = "/run/secrets/kfm-index-password"

# Catalog-wide metadata for DCAT (the dcat:Catalog every family's file belongs to).
# [catalog]
# title = "KFM processed data"
# description = "Promoted data products of this lake."
# publisher = { name = "Kansas Frontier Matrix", url = "https://kfm.example.org/" }

# Metadata of one family, used by its STAC collection and DCAT dataset. Every key is
# optional; without a table a family is described by its name.
# [families.parcels]
# title = "Kansas parcels"
# description = "Parcel boundaries digitised from the General Land Office plats."
# keywords = ["parcels", "land survey", "Kansas"]
# publisher = { name = "Kansas Geological Survey", url = "https://www.kgs.ku.edu/" }
# contact_point = { name = "KFM data desk", email = "data@kfm.example.org" }
# temporal = { start = 1854-01-01, end = 1900-12-31 }   # what the data covers
# bbox = [-102.05, 36.99, -94.59, 40.00]                 # overrides the products' extent

# [signing]
# Private Ed25519 key that signs runs and promotions (KFM_PROV_SIGNING_KEY overrides).
# It must lie OUTSIDE the lake root and have mode 0600: `kfm-prov keys generate --out DIR`.
# key = "/home/me/.config/kfm-prov/kfm-prov-signing.key"

# [trust]
# Public keys whose signatures count (several, to rotate keys). Relative to this file.
# keys = ["keys/ci-2026.pub"]
"""


#: The lake's zones in lifecycle order; the one order every module sorts zones by.
ZONES = ("raw", "work", "processed", "external")


def zone_rank(zone: str) -> int:
    """Position of ``zone`` in ``ZONES`` (unknown zones last)."""
    return ZONES.index(zone) if zone in ZONES else len(ZONES)


@dataclass(frozen=True)
class JobRule:
    """``[[openlineage.jobs]]``: which family and pipeline an OpenLineage job belongs to."""

    family: str
    namespace: str = "*"
    name: str = "*"
    pipeline: str = "{namespace}/{name}"


@dataclass(frozen=True)
class IndexConfig:
    """Where the lineage index lives: ``url`` None is the SQLite file under the cache."""

    url: str | None = None
    lake: str | None = None  # name inside a shared database; None: derived from the root
    password_file: str | None = None  # absolute, or relative to the lake root

    @property
    def backend(self) -> str:
        return "sqlite" if self.url is None else "postgresql"


@dataclass(frozen=True)
class Agent:
    """A publisher or contact: a name, and optionally a web page and an e-mail address."""

    name: str
    url: str | None = None
    email: str | None = None

    def to_dict(self) -> dict[str, str]:
        return {k: v for k, v in (("name", self.name), ("url", self.url),
                                  ("email", self.email)) if v is not None}


@dataclass(frozen=True)
class FamilyMetadata:
    """What ``[families.NAME]`` says about a family; every field is optional.

    STAC, DCAT and the audit site read it from here, so one edit of the config describes
    the family everywhere at its next promotion. ``temporal`` is the period the data
    covers (ISO 8601 dates or times, either end open); ``bbox`` replaces the extent computed
    from the products (west, south, east, north in WGS 84).
    """

    title: str | None = None
    description: str | None = None
    keywords: tuple[str, ...] = ()
    publisher: Agent | None = None
    contact_point: Agent | None = None
    temporal: tuple[str | None, str | None] | None = None
    bbox: tuple[float, float, float, float] | None = None

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.title is not None:
            out["title"] = self.title
        if self.description is not None:
            out["description"] = self.description
        if self.keywords:
            out["keywords"] = list(self.keywords)
        if self.publisher is not None:
            out["publisher"] = self.publisher.to_dict()
        if self.contact_point is not None:
            out["contact_point"] = self.contact_point.to_dict()
        if self.temporal is not None:
            out["temporal"] = {k: v for k, v in zip(("start", "end"), self.temporal,
                                                     strict=True) if v is not None}
        if self.bbox is not None:
            out["bbox"] = list(self.bbox)
        return out


@dataclass(frozen=True)
class CatalogMetadata:
    """``[catalog]``: the DCAT catalog that lists every family's dataset."""

    title: str = "KFM processed data"
    description: str = "Promoted data products of this lake, published by kfm-prov."
    publisher: Agent | None = None


@dataclass(frozen=True)
class LakeConfig:
    """Resolved configuration of one lake; all paths are relative to ``root``."""

    root: Path
    paths: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_PATHS))
    namespace: str = DEFAULT_NAMESPACE
    publish_user: bool = False
    public_params: frozenset[str] = frozenset()
    checkouts: tuple[tuple[str, str], ...] = ()  # (repository URL, local checkout)
    allow_dirty_commits: bool = False
    gc_min_age_hours: float = 24.0
    require_signed_runs: bool = False
    require_signatures: bool = False
    signing_key: str | None = None  # path as written ([signing] key); see ``signing_key_path``
    trusted_keys: tuple[str, ...] = ()  # public key paths ([trust] keys)
    openlineage_jobs: tuple[JobRule, ...] = ()
    openlineage_namespace: str = "kfm-prov"

    def job_mapping(self, namespace: str, name: str) -> tuple[str, str]:
        """(family, pipeline id) of an OpenLineage job: the first matching rule, else the
        namespace as the family and ``<namespace>/<name>`` as the pipeline."""
        import fnmatch
        import re

        for rule in self.openlineage_jobs:
            if (fnmatch.fnmatchcase(namespace, rule.namespace)
                    and fnmatch.fnmatchcase(name, rule.name)):
                pipeline = rule.pipeline.replace("{namespace}", namespace).replace(
                    "{name}", name)
                return rule.family, pipeline[:512] or name[:512]
        family = re.sub(r"[^A-Za-z0-9_-]+", "-", namespace).strip("-_")[:64].strip("-_")
        return family or "openlineage", f"{namespace}/{name}"[:512]

    index: IndexConfig = field(default_factory=IndexConfig)

    def lake_name(self) -> str:
        """The lake's name in a shared index: ``[index] lake``, else one derived from the
        root's path (the same lake seen at two paths is then two lakes: name it)."""
        if self.index.lake is not None:
            return self.index.lake
        return "p" + hashlib.sha256(os.fsencode(self.root.resolve())).hexdigest()[:20]
    families: dict[str, FamilyMetadata] = field(default_factory=dict)
    catalog: CatalogMetadata = field(default_factory=CatalogMetadata)

    def family(self, name: str) -> FamilyMetadata:
        """The family's configured metadata; empty (all defaults) if it has no table."""
        return self.families.get(name, FamilyMetadata())

    def dir(self, name: str) -> Path:
        """Absolute path of a configured directory (``raw``, ``runs``, ``stac`` ...)."""
        return self.root / self.paths[name]

    def rel(self, name: str) -> str:
        """Root-relative POSIX path of a configured directory."""
        return self.paths[name]

    def signing_key_path(self) -> Path | None:
        """``$KFM_PROV_SIGNING_KEY``, else ``[signing] key`` (relative to the root), else None."""
        given = os.environ.get(SIGNING_KEY_ENV) or self.signing_key
        if not given:
            return None
        path = Path(given).expanduser()
        return path if path.is_absolute() else self.root / path

    def trusted_key_paths(self) -> list[Path]:
        """``[trust] keys`` as paths (relative ones are relative to the root)."""
        return [p if p.is_absolute() else self.root / p
                for p in (Path(k).expanduser() for k in self.trusted_keys)]

    def zone_of(self, rel: str) -> str:
        """``raw``, ``processed``, ``work`` or ``external`` for a root-relative path."""
        for zone in ("raw", "processed", "work"):
            if _under(rel, self.paths[zone]):
                return zone
        return "external"

    def run_of_output(self, rel: str) -> str | None:
        """The run id a path names as one of its outputs (``<runs>/<family>/<id>/artifacts/…``).

        What the path claims, not a fact: the gate checks that run did record these bytes.
        """
        if _under(rel, self.paths["runs"]):
            parts = rel[len(self.paths["runs"]) + 1:].split("/")
            if len(parts) > 3 and parts[2] == "artifacts":
                return parts[1]
        return None

    def version_of_file(self, rel: str) -> tuple[str, str] | None:
        """(family, version) of a path inside a promoted version, ``<processed>/<f>/<v>/…``."""
        if _under(rel, self.paths["processed"]):
            parts = rel[len(self.paths["processed"]) + 1:].split("/")
            if len(parts) > 2:
                return parts[0], parts[1]
        return None

    def is_transient(self, rel: str) -> bool:
        """Staging, caches and a run's ``tmp/``: never a legitimate input of a product."""
        if _under(rel, self.paths["staging"]) or _under(rel, self.paths["cache"]):
            return True
        if _under(rel, self.paths["runs"]):
            parts = rel[len(self.paths["runs"]) + 1:].split("/")
            return len(parts) > 3 and parts[2] == "tmp"
        return False


def _under(rel: str, prefix: str) -> bool:
    return rel == prefix or rel.startswith(prefix + "/")


def load_config(root: Path) -> LakeConfig:
    """Read ``kfm-prov.toml`` under ``root`` if present; defaults otherwise."""
    path = root / CONFIG_NAME
    if not path.exists():
        config = LakeConfig(root=root)
    else:
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
            raise InputError(f"malformed TOML: {exc}", file=CONFIG_NAME) from None
        config = _from_toml(root, data)
    url = os.environ.get(INDEX_URL_ENV)
    if url:
        from dataclasses import replace

        index = replace(config.index, url=parse_index_url(url, file=INDEX_URL_ENV, field=None))
        config = replace(config, index=index)
    return config


def parse_index_url(value: object, *, file: str, field: str | None = None) -> str | None:
    """A PostgreSQL URL, or None for ``sqlite`` (the default). Never echoes the value."""
    from urllib.parse import urlsplit

    if not isinstance(value, str) or not value.strip():
        raise InputError("must be a non-empty string", file=file, field=field)
    if value.strip() == "sqlite":
        return None
    try:
        parts = urlsplit(value.strip())
        parts.port  # noqa: B018 - raises on a port that is not a number
    except ValueError:
        raise InputError("not a valid URL", file=file, field=field) from None
    if parts.scheme not in ("postgresql", "postgres") or not parts.path.strip("/"):
        raise InputError("must be postgresql://[user@]host[:port]/database or sqlite",
                         file=file, field=field)
    return value.strip()


def _index_table(data: dict[str, Any]) -> IndexConfig:
    table = _table(data, "index")
    for key in table:
        if key not in ("url", "lake", "password_file"):
            raise InputError("unknown index key", file=CONFIG_NAME, field=f"index.{key}")
    url = parse_index_url(table["url"], file=CONFIG_NAME, field="index.url") \
        if "url" in table else None
    lake = table.get("lake")
    if lake is not None and (not isinstance(lake, str) or not _LAKE_NAME.match(lake)):
        raise InputError("must be lowercase letters, digits and _ (at most 40), starting"
                         " with a letter", file=CONFIG_NAME, field="index.lake")
    password_file = table.get("password_file")
    if password_file is not None and (not isinstance(password_file, str)
                                      or not password_file.strip()):
        raise InputError("must be a non-empty string", file=CONFIG_NAME,
                         field="index.password_file")
    return IndexConfig(url=url, lake=lake, password_file=password_file)


def _from_toml(root: Path, data: dict[str, Any]) -> LakeConfig:
    known = {"paths", "prov", "policy", "openlineage", "index", "catalog", "families",
             "signing", "trust"}
    for key in data:
        if key not in known:
            raise InputError(f"unknown section [{key}]", file=CONFIG_NAME, field=key)
    paths = dict(DEFAULT_PATHS)
    for key, value in _table(data, "paths").items():
        if key not in DEFAULT_PATHS:
            raise InputError("unknown path key", file=CONFIG_NAME, field=f"paths.{key}")
        paths[key] = _relative_dir(value, f"paths.{key}")
    prov_table = _table(data, "prov")
    namespace = prov_table.get("namespace", DEFAULT_NAMESPACE)
    if not isinstance(namespace, str) or not namespace.startswith(("http://", "https://", "urn:")):
        raise InputError("namespace must be an http(s) or urn IRI", file=CONFIG_NAME,
                         field="prov.namespace")
    if not namespace.endswith(("/", "#", ":")):
        namespace += "/"
    publish_user = _flag(prov_table, "publish_user", "prov")
    public_params = prov_table.get("public_params", [])
    if not isinstance(public_params, list) or not all(
            isinstance(k, str) and k.strip() for k in public_params):
        raise InputError("must be a list of parameter names", file=CONFIG_NAME,
                         field="prov.public_params")
    policy = _table(data, "policy")
    allow_dirty = _flag(policy, "allow_dirty_commits", "policy")
    checkouts = policy.get("checkouts", {})
    if not isinstance(checkouts, dict) or not all(
            isinstance(k, str) and isinstance(v, str) and v.strip()
            for k, v in checkouts.items()):
        raise InputError("must be a table of repository URL = local path", file=CONFIG_NAME,
                         field="policy.checkouts")
    min_age = policy.get("gc_min_age_hours", 24)
    if not isinstance(min_age, int | float) or isinstance(min_age, bool) or min_age < 0:
        raise InputError("must be a non-negative number", file=CONFIG_NAME,
                         field="policy.gc_min_age_hours")
    signing = _table(data, "signing")
    for key in signing:
        if key != "key":
            raise InputError("unknown key", file=CONFIG_NAME, field=f"signing.{key}")
    signing_key = signing.get("key")
    if signing_key is not None and (not isinstance(signing_key, str) or not signing_key.strip()):
        raise InputError("must be a path", file=CONFIG_NAME, field="signing.key")
    trust = _table(data, "trust")
    for key in trust:
        if key != "keys":
            raise InputError("unknown key", file=CONFIG_NAME, field=f"trust.{key}")
    trusted = trust.get("keys", [])
    if not isinstance(trusted, list) or not all(isinstance(k, str) and k.strip()
                                                for k in trusted):
        raise InputError("must be a list of public key paths", file=CONFIG_NAME,
                         field="trust.keys")
    rules, export_namespace = _openlineage(_table(data, "openlineage"))
    families = {name: _family(name, table)
                for name, table in _table(data, "families").items()}
    return LakeConfig(root=root, paths=paths, namespace=namespace, publish_user=publish_user,
                      public_params=frozenset(public_params),
                      checkouts=tuple(sorted((k, str((root / v).resolve()))
                                             for k, v in checkouts.items())),
                      allow_dirty_commits=allow_dirty, gc_min_age_hours=float(min_age),
                      openlineage_jobs=rules, openlineage_namespace=export_namespace,
                      index=_index_table(data), families=families,
                      catalog=_catalog(_table(data, "catalog")),
                      require_signed_runs=_flag(policy, "require_signed_runs", "policy"),
                      require_signatures=_flag(policy, "require_signatures", "policy"),
                      signing_key=signing_key, trusted_keys=tuple(trusted))


def _openlineage(table: dict[str, Any]) -> tuple[tuple[JobRule, ...], str]:
    import re

    for key in table:
        if key not in ("jobs", "export_namespace"):
            raise InputError("unknown key", file=CONFIG_NAME, field=f"openlineage.{key}")
    export_namespace = table.get("export_namespace", "kfm-prov")
    if not isinstance(export_namespace, str) or not export_namespace.strip():
        raise InputError("must be a non-empty string", file=CONFIG_NAME,
                         field="openlineage.export_namespace")
    jobs = table.get("jobs", [])
    if not isinstance(jobs, list):
        raise InputError("must be an array of tables ([[openlineage.jobs]])", file=CONFIG_NAME,
                         field="openlineage.jobs")
    rules = []
    for i, job in enumerate(jobs):
        where = f"openlineage.jobs[{i}]"
        if not isinstance(job, dict):
            raise InputError("must be a table", file=CONFIG_NAME, field=where)
        for key, value in job.items():
            if key not in ("namespace", "name", "family", "pipeline"):
                raise InputError("unknown key", file=CONFIG_NAME, field=f"{where}.{key}")
            if not isinstance(value, str) or not value:
                raise InputError("must be a non-empty string", file=CONFIG_NAME,
                                 field=f"{where}.{key}")
        family = job.get("family")
        if family is None or not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}", family):
            raise InputError("family must be letters, digits, '_' or '-'", file=CONFIG_NAME,
                             field=f"{where}.family")
        rules.append(JobRule(family=family, namespace=job.get("namespace", "*"),
                             name=job.get("name", "*"),
                             pipeline=job.get("pipeline", "{namespace}/{name}")))
    return tuple(rules), export_namespace


_FAMILY_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_EMAIL = re.compile(r"^[^@\s<>]+@[^@\s<>]+\.[^@\s<>]+$")
_FAMILY_KEYS = ("title", "description", "keywords", "publisher", "contact_point", "temporal",
                "bbox")


def _family(name: str, table: object) -> FamilyMetadata:
    where = f"families.{name}"
    if not _FAMILY_NAME.match(name):
        raise InputError("a family name is letters, digits, '.', '_' or '-'",
                         file=CONFIG_NAME, field=where)
    if not isinstance(table, dict):
        raise InputError("must be a table", file=CONFIG_NAME, field=where)
    for key in table:
        if key not in _FAMILY_KEYS:
            raise InputError(f"unknown key; one of {', '.join(_FAMILY_KEYS)}",
                             file=CONFIG_NAME, field=f"{where}.{key}")
    keywords = table.get("keywords", [])
    if not isinstance(keywords, list) or not all(
            isinstance(k, str) and k.strip() for k in keywords):
        raise InputError("must be a list of non-empty strings", file=CONFIG_NAME,
                         field=f"{where}.keywords")
    return FamilyMetadata(
        title=_text(table, "title", where), description=_text(table, "description", where),
        keywords=tuple(dict.fromkeys(k.strip() for k in keywords)),
        publisher=_agent(table.get("publisher"), f"{where}.publisher"),
        contact_point=_agent(table.get("contact_point"), f"{where}.contact_point"),
        temporal=_temporal(table.get("temporal"), f"{where}.temporal"),
        bbox=_bbox(table.get("bbox"), f"{where}.bbox"))


def _catalog(table: dict[str, Any]) -> CatalogMetadata:
    for key in table:
        if key not in ("title", "description", "publisher"):
            raise InputError("unknown key; one of title, description, publisher",
                             file=CONFIG_NAME, field=f"catalog.{key}")
    default = CatalogMetadata()
    return CatalogMetadata(
        title=_text(table, "title", "catalog") or default.title,
        description=_text(table, "description", "catalog") or default.description,
        publisher=_agent(table.get("publisher"), "catalog.publisher"))


def _text(table: dict[str, Any], key: str, where: str) -> str | None:
    value = table.get(key)
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise InputError("must be a non-empty string", file=CONFIG_NAME, field=f"{where}.{key}")
    return value.strip()


def _agent(value: object, where: str) -> Agent | None:
    """``"Name"`` or ``{ name = ..., url = ..., email = ... }``."""
    if value is None:
        return None
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, dict):
        raise InputError("must be a name or a table with name, url, email",
                         file=CONFIG_NAME, field=where)
    for key in value:
        if key not in ("name", "url", "email"):
            raise InputError("unknown key; one of name, url, email", file=CONFIG_NAME,
                             field=f"{where}.{key}")
    name = _text(value, "name", where)
    if name is None:
        raise InputError("an agent needs a name", file=CONFIG_NAME, field=f"{where}.name")
    url = _text(value, "url", where)
    if url is not None and (not url.startswith(("http://", "https://"))
                            or re.search(r"[\s<>\"{}|\\^`]", url)):
        raise InputError("must be an http(s) URL", file=CONFIG_NAME, field=f"{where}.url")
    email = _text(value, "email", where)
    if email is not None and not _EMAIL.match(email):
        raise InputError("must be an e-mail address", file=CONFIG_NAME, field=f"{where}.email")
    return Agent(name, url, email)


def _temporal(value: object, where: str) -> tuple[str | None, str | None] | None:
    """``{ start = 1854-01-01, end = 1900-12-31 }``: TOML dates or date-times (with a
    zone), either end may be left out; kept as ISO 8601 text."""
    if value is None:
        return None
    if not isinstance(value, dict) or not value or set(value) - {"start", "end"}:
        raise InputError("must be a table with start and/or end", file=CONFIG_NAME,
                         field=where)
    ends: list[_dt.date | None] = []
    for key in ("start", "end"):
        item = value.get(key)
        if isinstance(item, _dt.datetime):
            if item.tzinfo is None:
                raise InputError("a date-time needs a zone (or give a date)",
                                 file=CONFIG_NAME, field=f"{where}.{key}")
        elif item is not None and not isinstance(item, _dt.date):
            raise InputError("must be a TOML date (1854-01-01) or date-time with a zone",
                             file=CONFIG_NAME, field=f"{where}.{key}")
        ends.append(item)
    start, end = ends

    def instant(d: _dt.date) -> _dt.datetime:
        if isinstance(d, _dt.datetime):
            return d.astimezone(_dt.UTC)
        return _dt.datetime(d.year, d.month, d.day, tzinfo=_dt.UTC)

    if start is not None and end is not None and instant(start) > instant(end):
        raise InputError("start is after end", file=CONFIG_NAME, field=where)
    return (None if start is None else start.isoformat(),
            None if end is None else end.isoformat())


def _bbox(value: object, where: str) -> tuple[float, float, float, float] | None:
    if value is None:
        return None
    numbers = [float(v) for v in value if isinstance(v, int | float)
               and not isinstance(v, bool)] if isinstance(value, list) else []
    ok = isinstance(value, list) and len(value) == 4 == len(numbers) and all(
        math.isfinite(v) for v in numbers)
    if ok:
        west, south, east, north = numbers
        ok = (-180 <= west <= 180 and -180 <= east <= 180 and -90 <= south <= north <= 90)
    if not ok:
        raise InputError("must be [west, south, east, north] in WGS 84 degrees",
                         file=CONFIG_NAME, field=where)
    return (numbers[0], numbers[1], numbers[2], numbers[3])


def _flag(table: dict[str, Any], key: str, section: str) -> bool:
    value = table.get(key, False)
    if not isinstance(value, bool):
        raise InputError("must be true or false", file=CONFIG_NAME, field=f"{section}.{key}")
    return value


def _table(data: dict[str, Any], name: str) -> dict[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, dict):
        raise InputError("must be a table", file=CONFIG_NAME, field=name)
    return table


def _relative_dir(value: object, field_name: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise InputError("must be a non-empty string", file=CONFIG_NAME, field=field_name)
    parts = Path(value).parts
    if Path(value).is_absolute() or ".." in parts:
        raise InputError("must be relative to the lake root, without '..'", file=CONFIG_NAME,
                         field=field_name)
    return Path(value).as_posix().rstrip("/")


def is_lake(path: Path) -> bool:
    """A lake is a directory with ``kfm-prov.toml`` or a ``data/`` folder (what ``init``
    makes); nothing else is opened as one, so a typo never grows a lake."""
    return (path / CONFIG_NAME).is_file() or (path / "data").is_dir()


def find_root(explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Path:
    """``--root``, else ``$KFM_PROV_ROOT``, else the nearest ancestor with the config or data/."""
    given = explicit if explicit is not None else os.environ.get(ROOT_ENV) or None
    if given is not None:
        where = f"--root/${ROOT_ENV}" if explicit is not None else f"${ROOT_ENV}"
        if not str(given).strip():
            raise InputError("the lake root is an empty path", field=where,
                             hint="pass the lake's directory, or run `kfm-prov init DIR`")
        root = Path(given).expanduser()
        if not root.is_dir():
            raise NotFoundError("lake root does not exist or is not a directory", file=str(root),
                                field=where, hint="check the path, or run `kfm-prov init DIR`")
        if not is_lake(root):
            # Opening it anyway would create data/work there and record runs in it.
            raise NotFoundError(f"not a kfm-prov lake: no {CONFIG_NAME} and no data/ in it",
                                file=str(root), field=where,
                                hint=f"run `kfm-prov init {root}` to make it one")
        return root.resolve()
    start = (cwd or Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if is_lake(candidate):
            return candidate
    raise NotFoundError(
        "no lake found: no kfm-prov.toml or data/ in this directory or its parents",
        file=str(start),
        hint="run `kfm-prov init` or pass --root",
    )
