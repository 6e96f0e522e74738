"""khri_sites: archaeological sites → precise points (restricted) → a generalised public grid.

The raw capture is recorded ``sensitive-location``: exact site locations invite looting.
Two captured runs:

1. ``locate``      sites.csv (raw) → sites_precise.geojson, labelled ``sensitive-location``
2. ``generalise``  sites_precise.geojson → sites_generalised.geojson, through
   ``run.redact(...)``: each site is snapped to the centre of a coarse grid cell, sites
   are counted per cell, names and site numbers are dropped. The redaction is recorded
   (as an activity of its own in PROV), which is what lets the result be ``public``.

``--label public`` runs ``locate`` with the precise points labelled public: the mistake
the promotion gate exists to catch (reason code ``sensitivity-downgrade``)::

    python pipeline.py --root /path/to/lake
    python pipeline.py --root /path/to/lake --only locate --label public
"""

from __future__ import annotations

import argparse
import csv
import json
import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from pathlib import Path

from kfm_prov.capture import Run
from kfm_prov.lake import Lake

FAMILY = "khri_sites"
HERE = Path(__file__).resolve().parent
GRID_DEGREES = 0.5
SPEC = {"family": FAMILY, "steps": ["locate", "generalise"], "crs": "EPSG:4326",
        "public_form": f"site counts per {GRID_DEGREES} degree cell"}


def locate(lake: Lake, label: str = "sensitive-location") -> Run:
    """The inventory's coordinates as GeoJSON points, labelled ``label``."""
    source = lake.config.dir("raw") / FAMILY / "sites.csv"
    with lake.capture(FAMILY, f"pipelines/{FAMILY}/locate", spec=SPEC, git_dir=HERE,
                      params={"label": label}) as run:
        with open(run.use(source), newline="", encoding="utf-8") as handle:
            sites = list(csv.DictReader(handle))
        features = [{
            "type": "Feature",
            "properties": {k: site[k] for k in ("site_number", "site_name", "period",
                                                "site_type")},
            "geometry": {"type": "Point", "coordinates": [float(site["longitude"]),
                                                          float(site["latitude"])]},
        } for site in sites]
        _write_geojson(run.output("sites_precise.geojson", role="product", sensitivity=label),
                       features)
        run.gate("coordinates_present", "pass", {"sites": len(features)})
    return run


def generalise(lake: Lake, precise: Path, grid: float = GRID_DEGREES) -> Run:
    """Precise points → one point per occupied grid cell, with counts: a public product."""
    with lake.capture(FAMILY, f"pipelines/{FAMILY}/generalise", spec=SPEC, git_dir=HERE,
                      params={"grid_degrees": grid}) as run:
        source = run.use(precise)
        points = json.loads(source.read_text(encoding="utf-8"))["features"]
        cells: dict[tuple[int, int], list[str]] = defaultdict(list)
        for point in points:
            lon, lat = point["geometry"]["coordinates"]
            cells[(math.floor(lon / grid), math.floor(lat / grid))].append(
                point["properties"]["period"])
        features = [{
            "type": "Feature",
            "properties": {"site_count": len(periods), "periods": sorted(set(periods)),
                           "cell_degrees": grid},
            "geometry": {"type": "Point", "coordinates": [round((x + 0.5) * grid, 6),
                                                          round((y + 0.5) * grid, 6)]},
        } for (x, y), periods in sorted(cells.items())]
        public = run.redact(source, "sites_generalised.geojson", sensitivity="public", profile={
            "method": "snap-to-grid", "grid_degrees": grid, "aggregate": "count per cell",
            "fields_removed": ["site_number", "site_name", "site_type"]})
        _write_geojson(public, features)
        run.gate("no_precise_coordinates", "pass", {"cells": len(features),
                                                    "sites": len(points)})
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="lake root (default: $KFM_PROV_ROOT or the enclosing lake)")
    parser.add_argument("--label", default="sensitive-location",
                        choices=["sensitive-location", "restricted", "public"],
                        help="sensitivity to declare for the precise points")
    parser.add_argument("--only", choices=["locate"], help="run only this step")
    args = parser.parse_args(argv)
    lake = Lake.open(args.root)
    first = locate(lake, args.label)
    print(f"locate     run {first.run_id}  {first.rel_dir}")
    if args.only is None:
        second = generalise(lake, first.artifacts / "sites_precise.geojson")
        print(f"generalise run {second.run_id}  {second.rel_dir}")
    return 0


def _write_geojson(path: Path, features: Sequence[Mapping[str, object]]) -> None:
    """GeoJSON with one feature per line: small diffs, and line tools can read it."""
    lines = ",\n".join(json.dumps(feature) for feature in features)
    path.write_text(f'{{"type": "FeatureCollection", "features": [\n{lines}\n]}}\n',
                    encoding="utf-8")


if __name__ == "__main__":
    raise SystemExit(main())
