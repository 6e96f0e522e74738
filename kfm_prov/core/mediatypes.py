"""Media types of lake files, with the geospatial and columnar types ``mimetypes`` lacks."""

from __future__ import annotations

import mimetypes
import re
from pathlib import PurePosixPath

_EXTRA = {
    ".geojson": "application/geo+json",
    ".parquet": "application/vnd.apache.parquet",
    ".gpkg": "application/geopackage+sqlite3",
    ".csv": "text/csv",
    ".tsv": "text/tab-separated-values",
    ".json": "application/json",
    ".jsonl": "application/x-ndjson",
    ".ndjson": "application/x-ndjson",
    ".tif": "image/tiff",
    ".tiff": "image/tiff",
    ".yml": "application/yaml",
    ".yaml": "application/yaml",
    ".ttl": "text/turtle",
    ".md": "text/markdown",
    ".txt": "text/plain",
    ".log": "text/plain",
    ".zip": "application/zip",
    ".shp": "application/vnd.shp",
}


def media_type(path: str) -> str:
    suffix = PurePosixPath(path).suffix.lower()
    if suffix in _EXTRA:
        return _EXTRA[suffix]
    guessed, _ = mimetypes.guess_type(path, strict=False)
    return guessed or "application/octet-stream"


_MEDIA_TYPE = re.compile(r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$")


def is_media_type(value: str) -> bool:
    """``type/subtype``, optionally with parameters: what the STAC and DCAT writers accept.

    Receipts a pipeline wrote can say anything; the gate refuses what publishing could
    not describe, so ``check`` and ``promote`` agree.
    """
    return bool(_MEDIA_TYPE.match(value))
