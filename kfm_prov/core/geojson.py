"""GeoJSON products as the catalogs read them: strict parsing and the bounding box.

Both the gate (``check`` refuses a GeoJSON product the catalogs could not read) and the
STAC writer (the item's bbox and geometry) read GeoJSON here, so they can never disagree
about what is valid.
"""

from __future__ import annotations

import math
from typing import Any

from kfm_prov.core import jsonio
from kfm_prov.errors import InputError

GEOJSON = "application/geo+json"


def is_geojson(media_type: str | None) -> bool:
    """Whether a product of this media type is read as GeoJSON (parameters ignored)."""
    return (media_type or "").split(";", 1)[0].strip().lower() == GEOJSON


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def read_geojson_bbox(data: bytes, path: str) -> list[float] | None:
    """[minx, miny, maxx, maxy] over all positions, or None if there is no geometry.

    Raises ``InputError`` naming ``path`` and the JSON pointer of the first fault:
    not strict JSON, not GeoJSON, or a position outside WGS 84 (RFC 7946).
    """
    try:
        doc = jsonio.loads(data, file=path)
    except InputError as exc:
        raise InputError(exc.message.replace("JSON", "GeoJSON", 1), file=path,
                         field=exc.field) from None
    xs: list[float] = []
    ys: list[float] = []

    def positions(coords: Any, where: str) -> None:
        if isinstance(coords, list) and coords and _is_number(coords[0]):
            if len(coords) < 2 or not all(_is_number(c) for c in coords):
                raise InputError("malformed GeoJSON position", file=path, field=where)
            x, y = float(coords[0]), float(coords[1])
            if not (-180.0 <= x <= 180.0 and -90.0 <= y <= 90.0):
                raise InputError(
                    f"GeoJSON position ({coords[0]}, {coords[1]}) is outside WGS 84 "
                    "longitude/latitude (RFC 7946)",
                    file=path,
                    field=where,
                )
            xs.append(coords[0])
            ys.append(coords[1])
        elif isinstance(coords, list):
            for c in coords:
                positions(c, where)
        else:
            raise InputError("malformed GeoJSON coordinates", file=path, field=where)

    def geometry(geom: Any, where: str) -> None:
        if geom is None:
            return
        if not isinstance(geom, dict):
            raise InputError("malformed GeoJSON geometry", file=path, field=where)
        kind = geom.get("type")
        if kind == "GeometryCollection":
            parts = geom.get("geometries")
            if not isinstance(parts, list):
                raise InputError("malformed GeometryCollection", file=path, field=where)
            for i, g in enumerate(parts):
                geometry(g, f"{where}/geometries/{i}")
        elif kind in (
            "Point",
            "MultiPoint",
            "LineString",
            "MultiLineString",
            "Polygon",
            "MultiPolygon",
        ):
            positions(geom.get("coordinates"), f"{where}/coordinates")
        else:
            raise InputError(f"unknown GeoJSON geometry type {kind!r}", file=path, field=where)

    def feature(feat: Any, where: str) -> None:
        if not isinstance(feat, dict) or feat.get("type") != "Feature":
            raise InputError("malformed GeoJSON Feature", file=path, field=where)
        geometry(feat.get("geometry"), f"{where}/geometry")

    if not isinstance(doc, dict):
        raise InputError("GeoJSON is not an object", file=path)
    if doc.get("type") == "FeatureCollection":
        feats = doc.get("features")
        if not isinstance(feats, list):
            raise InputError("FeatureCollection has no features list", file=path)
        for i, f in enumerate(feats):
            feature(f, f"features/{i}")
    elif doc.get("type") == "Feature":
        feature(doc, "")
    else:
        geometry(doc, "")
    if not xs:
        return None
    return [min(xs), min(ys), max(xs), max(ys)]
