"""Every schema URL the outside STAC validators ask for, mapped to a local file.

pytest runs without a network, and stac-validator (the ``stac_valid`` package) and
stac-check fetch the STAC core schemas, the GeoJSON schemas, the draft-07 meta-schema and
the extension schemas by URL. The local copies are pystac's bundled core and GeoJSON
schemas, jsonschema's meta-schema, and the extension schemas kfm-prov ships (the published
copies, at their ``$id``).
"""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

EXTENSIONS = ("file", "processing", "projection", "version")


def schema_map(folder: Path) -> dict[str, str]:
    """Write every schema into ``folder``; return URL -> local path."""
    import jsonschema
    from pystac.validation import JsonSchemaSTACValidator

    schemas: dict[str, object] = dict(JsonSchemaSTACValidator().schema_cache)
    schemas["http://json-schema.org/draft-07/schema"] = jsonschema.Draft7Validator.META_SCHEMA
    ours = resources.files("kfm_prov").joinpath("schemas", "stac")
    for name in EXTENSIONS:
        schema = json.loads(ours.joinpath(f"{name}.schema.json").read_text("utf-8"))
        schemas[str(schema["$id"]).rstrip("#")] = schema
    folder.mkdir(parents=True, exist_ok=True)
    out: dict[str, str] = {}
    for i, (url, schema) in enumerate(sorted(schemas.items())):
        path = folder / f"{i:02d}-{url.rstrip('/').rsplit('/', 1)[-1]}"
        path.write_text(json.dumps(schema), encoding="utf-8")
        out[url] = str(path)
        out[url + "#"] = str(path)
    return out


def no_network(monkeypatch: object) -> None:
    """Refuse every socket for the rest of the test (``monkeypatch`` is pytest's)."""
    import socket

    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    for name in ("socket", "create_connection", "getaddrinfo"):
        monkeypatch.setattr(socket, name, refuse)  # type: ignore[attr-defined]


def validators(monkeypatch: object, mapping: dict[str, str]) -> tuple[object, object]:
    """stac-validator's CLI and stac-check's Linter, reading schemas through ``mapping``.

    stac-check has no schema-map option; both go through stac_validator's own hook for
    local schema files (``_map_extension_url_to_local``), which is pointed at ``mapping``.
    The package warns on import that its PyPI name moved (it is the new name already).
    """
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        import stac_validator.utilities as utilities
        from stac_check.lint import Linter
        from stac_validator.stac_validator import cli as validator_cli
    original = utilities._map_extension_url_to_local
    monkeypatch.setattr(  # type: ignore[attr-defined]
        utilities, "_map_extension_url_to_local", lambda url: mapping.get(url, original(url)))
    return validator_cli, Linter
