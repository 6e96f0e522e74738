"""glo_land_patents: General Land Office patents → a normalised table → GeoJSON parcels.

Three captured runs, one per step, so each can be rerun and audited on its own:

1. ``normalise``  patents_batch*.csv (raw)          → patents.csv (ISO dates, names, PLSS)
2. ``locate``     patents.csv + plss_townships.csv  → patents_located.csv (a box per parcel)
3. ``parcels``    patents_located.csv               → parcels.geojson (the public product)

Each step opens ``lake.capture(...)``, declares what it reads (``run.use``) and writes
(``run.output``), and records its own checks (``run.gate``). kfm-prov does the rest:
digests, receipts, PROV, the index. Run it from a git checkout of your pipelines, since
the promotion gate refuses products of uncommitted code::

    python pipeline.py --root /path/to/lake

The geometry is the Public Land Survey System's ideal grid (six-mile townships, one-mile
sections, aliquot parts), good to a few hundred metres; it is not survey-grade.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
from datetime import datetime
from pathlib import Path

from kfm_prov.capture import Run
from kfm_prov.lake import Lake

FAMILY = "glo_land_patents"
HERE = Path(__file__).resolve().parent  # the pipeline's git checkout: its commit is recorded
SPEC = {"family": FAMILY, "steps": ["normalise", "locate", "parcels"], "crs": "EPSG:4326",
        "geometry": "PLSS ideal grid from township corners"}
DATE_FORMATS = ("%Y-%m-%d", "%m/%d/%Y", "%d %b %Y")


def normalise(lake: Lake) -> Run:
    """Every raw batch → one table with ISO dates, 'Given Surname' names and parsed PLSS."""
    raw_dir = lake.config.dir("raw") / FAMILY
    batches = sorted(raw_dir.glob("patents_batch*.csv"))
    with lake.capture(FAMILY, f"pipelines/{FAMILY}/normalise", spec=SPEC, git_dir=HERE,
                      params={"date_formats": list(DATE_FORMATS)}) as run:
        rows = []
        for batch in batches:
            with open(run.use(batch), newline="", encoding="utf-8") as handle:
                rows += list(csv.DictReader(handle))
        bad_dates = 0
        out = []
        for row in sorted(rows, key=lambda r: r["accession_nr"]):
            issued = _parse_date(row["issue_date"])
            bad_dates += issued is None
            surname, _, given = row["patentee"].partition(",")
            out.append({
                "accession_nr": row["accession_nr"],
                "patentee": f"{given.strip().title()} {surname.strip().title()}",
                "issue_date": issued or "",
                "document_type": row["document_type"],
                "land_office": row["land_office"],
                "township": int(row["township"][:-1]), "township_dir": row["township"][-1],
                "range": int(row["range"][:-1]), "range_dir": row["range"][-1],
                "section": int(row["section"]), "aliquots": row["aliquots"],
                "acres": int(row["acres"]), "authority": row["authority"],
            })
        _write_csv(run.output("patents.csv"), out)
        run.gate("schema", "pass", {"rows": len(out), "batches": len(batches)})
        run.gate("dates_parsed", "fail" if bad_dates else "pass", {"unparsed": bad_dates})
    return run


def locate(lake: Lake, normalised: Path) -> Run:
    """Each patent's legal description → a bounding box from the township corners."""
    corners_path = lake.config.dir("raw") / FAMILY / "plss_townships.csv"
    with lake.capture(FAMILY, f"pipelines/{FAMILY}/locate", spec=SPEC, git_dir=HERE,
                      params={"grid": "PLSS ideal", "decimals": 6}) as run:
        with open(run.use(normalised), newline="", encoding="utf-8") as handle:
            patents = list(csv.DictReader(handle))
        with open(run.use(corners_path, "auxiliary"), newline="", encoding="utf-8") as handle:
            corners = {(r["township"], r["range"]): r for r in csv.DictReader(handle)}
        out, missing = [], []
        for row in patents:
            key = (f"{int(row['township']):03d}{row['township_dir']}",
                   f"{int(row['range']):03d}{row['range_dir']}")
            if key not in corners:
                missing.append(row["accession_nr"])
                continue
            box = _parcel_box(corners[key], int(row["section"]), row["aliquots"])
            out.append({**row, **dict(zip(("west", "south", "east", "north"), box,
                                          strict=True))})
        _write_csv(run.output("patents_located.csv"), out)
        run.gate("all_located", "fail" if missing else "pass",
                 {"located": len(out), "missing": missing})
    return run


def parcels(lake: Lake, located: Path) -> Run:
    """Bounding boxes → GeoJSON polygons, the public product of the family."""
    with lake.capture(FAMILY, f"pipelines/{FAMILY}/parcels", spec=SPEC, git_dir=HERE,
                      params={"crs": "EPSG:4326"}) as run:
        with open(run.use(located), newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        features, invalid = [], 0
        for row in rows:
            w, s, e, n = (float(row[k]) for k in ("west", "south", "east", "north"))
            inside_kansas = -102.1 < w < e < -94.5 and 36.9 < s < n < 40.1
            invalid += not inside_kansas
            features.append({
                "type": "Feature", "id": row["accession_nr"],
                "properties": {
                    "accession_nr": row["accession_nr"], "patentee": row["patentee"],
                    "issue_date": row["issue_date"], "document_type": row["document_type"],
                    "acres": int(row["acres"]), "land_office": row["land_office"],
                    "legal_description": _legal(row), "authority": row["authority"]},
                "geometry": {"type": "Polygon",
                             "coordinates": [[[w, s], [e, s], [e, n], [w, n], [w, s]]]},
            })
        product = run.output("parcels.geojson", role="product", sensitivity="public")
        product.write_text(_feature_collection(features), encoding="utf-8")
        run.gate("geometry_validity", "fail" if invalid else "pass",
                 {"features": len(features), "invalid": invalid})
    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", help="lake root (default: $KFM_PROV_ROOT or the enclosing lake)")
    args = parser.parse_args(argv)
    lake = Lake.open(args.root)
    first = normalise(lake)
    second = locate(lake, first.artifacts / "patents.csv")
    third = parcels(lake, second.artifacts / "patents_located.csv")
    for step, run in (("normalise", first), ("locate", second), ("parcels", third)):
        print(f"{step:10} run {run.run_id}  {run.rel_dir}")
    return 0


# --- helpers ----------------------------------------------------------------------------------

def _parse_date(text: str) -> str | None:
    for fmt in DATE_FORMATS:
        try:
            return datetime.strptime(text.strip(), fmt).date().isoformat()
        except ValueError:
            continue
    return None


def _parcel_box(corners: dict[str, str], section: int, aliquots: str
                ) -> tuple[float, float, float, float]:
    """Section ``section`` of the township (1 in the north-east, snaking west and east),
    then each aliquot part from the largest (written last) to the smallest."""
    west, south, east, north = (float(corners[k]) for k in ("west", "south", "east", "north"))
    row, place = divmod(section - 1, 6)
    col = 5 - place if row % 2 == 0 else place
    dx, dy = (east - west) / 6, (north - south) / 6
    w, n = west + col * dx, north - row * dy
    box = [w, n - dy, w + dx, n]
    for part in reversed(re.findall(r"([NS]?[EW]?)1/[24]", aliquots)):
        box = _aliquot(box, part)
    return tuple(round(v, 6) for v in box)  # type: ignore[return-value]


def _aliquot(box: list[float], where: str) -> list[float]:
    """The half (N, S, E, W) or quarter (NE, NW, SE, SW) of a box."""
    w, s, e, n = box
    mid_x, mid_y = (w + e) / 2, (s + n) / 2
    if "N" in where:
        s = mid_y
    if "S" in where:
        n = mid_y
    if "E" in where:
        w = mid_x
    if "W" in where:
        e = mid_x
    return [w, s, e, n]


def _legal(row: dict[str, str]) -> str:
    part = f"{row['aliquots']} " if row["aliquots"] else ""
    return (f"{part}sec. {row['section']}, T{row['township']}{row['township_dir']}"
            f" R{row['range']}{row['range_dir']}, 6th PM")


def _feature_collection(features: list[dict[str, object]]) -> str:
    """GeoJSON with one feature per line: small diffs, and line tools can read it."""
    lines = ",\n".join(json.dumps(feature) for feature in features)
    return f'{{"type": "FeatureCollection", "features": [\n{lines}\n]}}\n'


def _write_csv(path: Path, rows: list[dict[str, object]]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else [],
                                lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    raise SystemExit(main())
