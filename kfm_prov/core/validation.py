"""Schema validation of receipts, shipped schemas loaded from the package (never the network).

Each receipt kind has a versioned schema under ``kfm_prov/schemas``. A receipt without
``schema_version`` is checked against the current schema (each version so far only added
optional fields, so the seed's skeletons, which have none, still pass). A receipt of an
older version is checked against its own schema: old lakes stay readable. OpenLineage
events are checked here too, against the 2-0-2 event schema and the standard facet
schemas shipped in ``schemas/openlineage/`` (and our own ``kfm_*`` facets), each
registered under its ``$id``.
"""

from __future__ import annotations

import functools
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from kfm_prov.core.fastschema import Check, Unsupported, compile_schema, decide
from kfm_prov.core.findings import Finding
from kfm_prov.errors import InputError

SCHEMA_BASE = "https://kfm-prov.org/schemas/"

# Receipt kind → (current schema file, file name it usually has).
KINDS: dict[str, tuple[str, str]] = {
    "run_record": ("run_record.v2.json", "run_record.json"),
    "run_manifest": ("run_manifest.v1.json", "run_manifest.json"),
    "validation_report": ("validation_report.v1.json", "validation_report.json"),
    "waiver": ("waiver.v1.json", "waiver.json"),
    "raw_manifest": ("raw_manifest.v1.json", "manifest.yml"),
    "raw_labels": ("raw_labels.v1.json", "labels.trail.jsonl"),
    "certificate": ("certificate.v1.json", "certificate.json"),
    "refusal": ("refusal.v1.json", "refusal.json"),
}
RUN_RECEIPTS = ("run_record", "run_manifest", "validation_report")
# Older versions still read: schema_version → schema file. v2 of the run record added
# ``code`` (repository, entry file and blob: issue 12 §4).
OLDER_VERSIONS: dict[str, dict[str, str]] = {
    "run_record": {"kfm.run_record.v1": "run_record.v1.json"},
}


def schema_version(kind: str) -> str:
    """The version kfm-prov writes: ``kfm.<kind>.vN`` from the current schema's file name."""
    return f"kfm.{kind}.{KINDS[kind][0].split('.')[1]}"


@functools.cache
def shipped_schema(*parts: str) -> dict[str, Any]:
    """A JSON Schema shipped in ``kfm_prov/schemas/`` (e.g. ``"stac", "file.schema.json"``).

    The one loader of the package's schemas: read with ``importlib.resources`` (so a wheel
    or zip works), parsed once, never fetched over the network.
    """
    entry = resources.files("kfm_prov").joinpath("schemas", *parts)
    try:
        return dict(json.loads(entry.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise InputError(f"no such schema shipped: {'/'.join(parts)}") from None


@functools.cache
def _schema_resources() -> dict[str, dict[str, Any]]:
    """Our receipt schemas by file name (the top folder), for ``$ref`` resolution."""
    folder = resources.files("kfm_prov") / "schemas"
    return {entry.name: shipped_schema(entry.name) for entry in folder.iterdir()
            if entry.name.endswith(".json")}


def load_schema(name: str) -> dict[str, Any]:
    """A shipped schema by file name, e.g. ``run_record.v1.json``."""
    try:
        return _schema_resources()[name]
    except KeyError:
        raise InputError(f"no such schema shipped: {name}") from None


@functools.cache
def _validator(kind: str, schema_file: str | None = None) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource

    registry: Registry = Registry().with_resources(
        (SCHEMA_BASE + name, Resource.from_contents(schema))
        for name, schema in _schema_resources().items()
    )
    schema = load_schema(schema_file or KINDS[kind][0])
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


@functools.cache
def _compiled(kind: str, schema_file: str | None = None) -> Check | None:
    """The receipt schema compiled by ``fastschema``; None when it cannot be.

    Compiled without ``jsonschema``: ``fastschema`` decides the formats our schemas use,
    so a process that reads only valid receipts never imports ``jsonschema``.
    """
    documents = {SCHEMA_BASE + name: schema for name, schema in _schema_resources().items()}
    try:
        return compile_schema(load_schema(schema_file or KINDS[kind][0]), documents)
    except (Unsupported, KeyError, IndexError, ValueError, re.error):
        return None


def is_valid(kind: str, data: Any, schema_file: str | None = None) -> bool | None:
    """True when the receipt is valid (against ``schema_file``, an older version, if
    given); False or None when ``jsonschema`` must tell."""
    check = _compiled(kind, schema_file)
    return None if check is None else decide(check, data)


# --- OpenLineage -------------------------------------------------------------------------------

OPENLINEAGE_DIR = "openlineage"
OPENLINEAGE_EVENT_ID = "https://openlineage.io/spec/2-0-2/OpenLineage.json"
# Where a facet sits in an event → the base definition its schema extends.
FACET_CONTAINERS = {"run": "RunFacet", "job": "JobFacet", "dataset": "DatasetFacet",
                    "input": "InputDatasetFacet", "output": "OutputDatasetFacet"}


@functools.cache
def openlineage_schemas() -> dict[str, dict[str, Any]]:
    """Every shipped OpenLineage schema (event, standard facets, kfm facets) by ``$id``."""
    folder = resources.files("kfm_prov") / "schemas"
    loaded: dict[str, dict[str, Any]] = {}
    pending: list[tuple[str, ...]] = [(OPENLINEAGE_DIR,)]
    while pending:
        parts = pending.pop()
        for entry in folder.joinpath(*parts).iterdir():
            if entry.is_dir():
                pending.append((*parts, entry.name))
            elif entry.name.endswith(".json"):
                schema = shipped_schema(*parts, entry.name)
                loaded[schema["$id"]] = schema
    return loaded


@functools.cache
def _openlineage_validators() -> tuple[dict[str, Any], dict[tuple[str, str], Any]]:
    """A validator per event kind, and one per (container, facet key) we know."""
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource

    schemas = openlineage_schemas()
    registry: Registry = Registry().with_resources(
        (uri, Resource.from_contents(schema)) for uri, schema in schemas.items())
    checker = FormatChecker()
    events = {kind: Draft202012Validator({"$ref": f"{OPENLINEAGE_EVENT_ID}#/$defs/{kind}"},
                                         registry=registry, format_checker=checker)
              for kind in ("RunEvent", "DatasetEvent", "JobEvent")}
    bases = {f"{OPENLINEAGE_EVENT_ID}#/$defs/{base}": container
             for container, base in FACET_CONTAINERS.items()}
    facets: dict[tuple[str, str], Any] = {}
    for uri, schema in schemas.items():
        for key, ref in schema.get("properties", {}).items():
            name = ref.get("$ref", "").rsplit("/", 1)[-1]
            definition = schema.get("$defs", {}).get(name, {})
            for part in definition.get("allOf", []):
                container = bases.get(part.get("$ref", ""))
                if container is not None:
                    facets[(container, key)] = Draft202012Validator(
                        {"$ref": f"{uri}#/$defs/{name}"}, registry=registry,
                        format_checker=checker)
    return events, facets


def validate_openlineage(data: Any, *, file: str) -> list[Finding]:
    """Schema problems of one OpenLineage event (the event, then each standard facet).

    A facet we have no schema for (a producer's own) only has to be a base facet, which
    the event schema checks; a standard facet in its usual place is checked in full.
    """
    if not isinstance(data, dict):
        return [Finding("schema", "an OpenLineage event is a JSON object", file, "/")]
    events, facets = _openlineage_validators()
    # The event schema is a oneOf; checking the kind the event says it is names the field.
    kind = ("RunEvent" if "run" in data else "DatasetEvent" if "dataset" in data
            else "JobEvent")
    findings = [_finding(error, file) for error in events[kind].iter_errors(data)]
    if findings:
        return sorted(findings, key=lambda f: (f.pointer or "", f.message))
    for container, pointer, facet_map in _facet_maps(data):
        for key, value in facet_map.items():
            validator = facets.get((container, key))
            if validator is None:
                continue
            for error in validator.iter_errors(value):
                found = _finding(error, file)
                inner = "" if found.pointer == "/" else found.pointer
                findings.append(Finding(found.code, found.message, file,
                                        f"{pointer}/{_escape(key)}{inner}"))
    return sorted(findings, key=lambda f: (f.pointer or "", f.message))


def _facet_maps(data: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(container, JSON pointer, facets) of every facet map an event holds."""
    out: list[tuple[str, str, dict[str, Any]]] = []

    def add(container: str, pointer: str, value: Any) -> None:
        if isinstance(value, dict):
            out.append((container, pointer, value))

    for name in ("run", "job"):
        part = data.get(name)
        if isinstance(part, dict):
            add(name, f"/{name}/facets", part.get("facets"))
    for direction, extra in (("inputs", "inputFacets"), ("outputs", "outputFacets")):
        items = data.get(direction)
        for i, dataset in enumerate(items if isinstance(items, list) else []):
            if isinstance(dataset, dict):
                add("dataset", f"/{direction}/{i}/facets", dataset.get("facets"))
                add(direction[:-1], f"/{direction}/{i}/{extra}", dataset.get(extra))
    if isinstance(data.get("dataset"), dict):
        add("dataset", "/dataset/facets", data["dataset"].get("facets"))
    return out


def _escape(part: object) -> str:
    return str(part).replace("~", "~0").replace("/", "~1")


def _finding(error: Any, file: str) -> Finding:
    from jsonschema.exceptions import best_match

    while error.context:  # anyOf/oneOf: the deepest, most relevant cause names the field
        error = best_match(error.context)
    pointer = "/" + "/".join(_escape(p) for p in error.absolute_path)
    return Finding("schema", _short(error), file, pointer)


def kind_of(path: Path, data: Any = None) -> str:
    """Which receipt a file is: by ``schema_version`` first, then by file name."""
    if isinstance(data, dict) and isinstance(data.get("schema_version"), str):
        for kind in KINDS:
            if data["schema_version"].startswith(f"kfm.{kind}."):
                return kind
    for kind, (_, filename) in KINDS.items():
        if path.name in (filename, filename.replace(".yml", ".yaml")) or (
                kind in ("certificate", "refusal") and path.name.endswith(f".{filename}")):
            return kind
    raise InputError("cannot tell which receipt this is: name it run_record.json,"
                     " run_manifest.json, validation_report.json, waiver.json or manifest.yml,"
                     " or give it a schema_version", file=str(path))


def validate_data(kind: str, data: Any, *, file: str) -> list[Finding]:
    """Every schema problem of ``data`` as a finding with its JSON pointer."""
    older = None
    if isinstance(data, dict):
        version = data.get("schema_version")
        older = OLDER_VERSIONS.get(kind, {}).get(version) if isinstance(version, str) else None
        if version is not None and version != schema_version(kind) and older is None:
            readable = [schema_version(kind), *OLDER_VERSIONS.get(kind, {})]
            return [Finding("schema-version", f"unsupported schema_version {version!r};"
                            f" this kfm-prov reads {', '.join(map(repr, readable))}", file,
                            "/schema_version")]
    if is_valid(kind, data, older):  # the compiled fast path, for older versions too
        return []
    findings = [_finding(error, file) for error in _validator(kind, older).iter_errors(data)]
    return sorted(findings, key=lambda f: (f.pointer or "", f.message))


def _short(error: Any) -> str:
    message = str(error.message)
    if len(message) > 200:
        message = message[:197] + "..."
    return f"{message} (expected by {error.validator})"
