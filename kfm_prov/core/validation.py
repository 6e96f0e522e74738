"""Schema validation of receipts, shipped schemas loaded from the package (never the network).

Each receipt kind has a versioned schema under ``kfm_prov/schemas``. A receipt without
``schema_version`` is read as v1 (the seed's skeletons have none).
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
    "run_record": ("run_record.v1.json", "run_record.json"),
    "run_manifest": ("run_manifest.v1.json", "run_manifest.json"),
    "validation_report": ("validation_report.v1.json", "validation_report.json"),
    "waiver": ("waiver.v1.json", "waiver.json"),
    "raw_manifest": ("raw_manifest.v1.json", "manifest.yml"),
    "certificate": ("certificate.v1.json", "certificate.json"),
    "refusal": ("refusal.v1.json", "refusal.json"),
}
RUN_RECEIPTS = ("run_record", "run_manifest", "validation_report")


def schema_version(kind: str) -> str:
    return f"kfm.{kind}.v1"


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
def _validator(kind: str) -> Any:
    from jsonschema import Draft202012Validator, FormatChecker
    from referencing import Registry, Resource

    registry: Registry = Registry().with_resources(
        (SCHEMA_BASE + name, Resource.from_contents(schema))
        for name, schema in _schema_resources().items()
    )
    schema = load_schema(KINDS[kind][0])
    return Draft202012Validator(schema, registry=registry, format_checker=FormatChecker())


@functools.cache
def _compiled(kind: str) -> Check | None:
    """The receipt schema compiled by ``fastschema``; None when it cannot be."""
    from jsonschema import FormatChecker

    documents = {SCHEMA_BASE + name: schema for name, schema in _schema_resources().items()}
    try:
        return compile_schema(load_schema(KINDS[kind][0]), documents, FormatChecker())
    except (Unsupported, KeyError, IndexError, ValueError, re.error):
        return None


def is_valid(kind: str, data: Any) -> bool | None:
    """True when the receipt is valid; False or None when ``jsonschema`` must tell."""
    check = _compiled(kind)
    return None if check is None else decide(check, data)


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
    if isinstance(data, dict):
        version = data.get("schema_version")
        if version is not None and version != schema_version(kind):
            return [Finding("schema-version", f"unsupported schema_version {version!r};"
                            f" this kfm-prov reads {schema_version(kind)!r}", file,
                            "/schema_version")]
    if is_valid(kind, data):  # the compiled fast path; jsonschema names the problems
        return []
    findings = []
    for error in _validator(kind).iter_errors(data):
        pointer = "/" + "/".join(str(p).replace("~", "~0").replace("/", "~1")
                                 for p in error.absolute_path)
        findings.append(Finding("schema", _short(error), file, pointer))
    return sorted(findings, key=lambda f: (f.pointer or "", f.message))


def _short(error: Any) -> str:
    message = str(error.message)
    if len(message) > 200:
        message = message[:197] + "..."
    return f"{message} (expected by {error.validator})"
