"""The lake's layout and policy, read from ``kfm-prov.toml`` (SPEC §2).

KFM's own documents disagree on where things live, so every path is configurable and
nothing else in the package hard-codes one: code asks ``LakeConfig`` for a directory.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from kfm_prov.errors import InputError, NotFoundError

CONFIG_NAME = "kfm-prov.toml"
ROOT_ENV = "KFM_PROV_ROOT"

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

    def dir(self, name: str) -> Path:
        """Absolute path of a configured directory (``raw``, ``runs``, ``stac`` ...)."""
        return self.root / self.paths[name]

    def rel(self, name: str) -> str:
        """Root-relative POSIX path of a configured directory."""
        return self.paths[name]

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
        return LakeConfig(root=root)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise InputError(f"malformed TOML: {exc}", file=CONFIG_NAME) from None
    return _from_toml(root, data)


def _from_toml(root: Path, data: dict[str, Any]) -> LakeConfig:
    known = {"paths", "prov", "policy", "openlineage"}
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
    rules, export_namespace = _openlineage(_table(data, "openlineage"))
    return LakeConfig(root=root, paths=paths, namespace=namespace, publish_user=publish_user,
                      public_params=frozenset(public_params),
                      checkouts=tuple(sorted((k, str((root / v).resolve()))
                                             for k, v in checkouts.items())),
                      allow_dirty_commits=allow_dirty, gc_min_age_hours=float(min_age),
                      openlineage_jobs=rules, openlineage_namespace=export_namespace)


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


def find_root(explicit: str | os.PathLike[str] | None = None, cwd: Path | None = None) -> Path:
    """``--root``, else ``$KFM_PROV_ROOT``, else the nearest ancestor with the config or data/."""
    given = explicit if explicit is not None else os.environ.get(ROOT_ENV) or None
    if given is not None:
        root = Path(given).expanduser()
        if not root.is_dir():
            raise NotFoundError("lake root does not exist or is not a directory", file=str(root))
        return root.resolve()
    start = (cwd or Path.cwd()).resolve()
    for candidate in (start, *start.parents):
        if (candidate / CONFIG_NAME).is_file() or (candidate / "data").is_dir():
            return candidate
    raise NotFoundError(
        "no lake found: no kfm-prov.toml or data/ in this directory or its parents",
        file=str(start),
        hint="run `kfm-prov init` or pass --root",
    )
