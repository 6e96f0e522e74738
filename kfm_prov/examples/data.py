"""Small, deterministic source data for the example families (nothing is downloaded).

Each function returns the text of one raw capture, the same bytes on every machine, so
the demo's raw digests (and the products made from them) are stable. The records are
synthetic: names are made up from prairie words, coordinates are random points in Kansas,
and every attribution says so. ``CAPTURES`` says where each file goes in a lake and under
which license, attribution and sensitivity it is recorded.
"""

from __future__ import annotations

import csv
import io
import json
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kfm_prov.lake import Lake

SYNTHETIC = "synthetic sample made by kfm-prov"

# The Sixth Principal Meridian and its base line (the Kansas–Nebraska line), which every
# township and range in Kansas is counted from.
MERIDIAN_LON = -97.368889
BASELINE_LAT = 40.0
MILES_PER_DEGREE_LAT = 69.05

GIVEN = ("Ada", "Amos", "Clara", "Ezra", "Hattie", "Jasper", "Mae", "Nell", "Otis", "Ruth",
         "Silas", "Wiley")
SURNAMES = ("Bluestem", "Buffalograss", "Cottonwood", "Flinthills", "Kawfield", "Meadowlark",
            "Prairiewind", "Sagebrush", "Sandhill", "Switchgrass")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
ALIQUOTS = ("NE1/4", "NW1/4", "SE1/4", "SW1/4", "N1/2", "S1/2", "E1/2NE1/4", "W1/2SW1/4",
            "NW1/4SE1/4", "")


def _csv(header: str, rows: list[list[object]]) -> str:
    """CSV text with a header line; fields holding commas are quoted."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(header.split(","))
    writer.writerows(rows)
    return buffer.getvalue()


def _acres(aliquot: str) -> int:
    acres = 640.0
    for fraction in aliquot.replace("1/4", "1/4 ").replace("1/2", "1/2 ").split():
        acres /= 4 if fraction.endswith("1/4") else 2
    return int(acres)


# --- glo_land_patents -----------------------------------------------------------------------

GLO_TOWNSHIPS = ((10, "S", 6, "E"), (10, "S", 7, "E"), (11, "S", 6, "E"), (11, "S", 7, "E"))


def glo_patents(batch: int) -> str:
    """GLO land patents as the records list them: mixed date and name styles, PLSS text."""
    rng = random.Random(1862 + batch)
    offices = ("Junction City", "Topeka", "Salina")
    rows: list[list[object]] = []
    count = 24 if batch == 1 else 8
    for number in range(count):
        serial = (batch - 1) * 100 + number + 1
        year, month, day = rng.randint(1866, 1889), rng.randint(1, 12), rng.randint(1, 28)
        style = number % 3
        issued = (f"{year}-{month:02d}-{day:02d}" if style == 0 else
                  f"{month:02d}/{day:02d}/{year}" if style == 1 else
                  f"{day} {MONTHS[month - 1]} {year}")
        surname, given = rng.choice(SURNAMES), rng.choice(GIVEN)
        patentee = f"{surname.upper()}, {given.upper()}" if number % 2 else f"{surname}, {given}"
        township, t_dir, range_, r_dir = rng.choice(GLO_TOWNSHIPS)
        aliquot = rng.choice(ALIQUOTS)
        homestead = _acres(aliquot) <= 160
        rows.append([
            f"KS-DEMO-{serial:04d}", "Homestead" if homestead else "Cash Entry", patentee,
            issued, rng.choice(offices), "KS", "6th PM", f"{township:03d}{t_dir}",
            f"{range_:03d}{r_dir}", rng.randint(1, 36), aliquot, _acres(aliquot),
            "Homestead Act of 1862" if homestead else "Sale-Cash Entry (1820)",
        ])
    return _csv("accession_nr,document_type,patentee,issue_date,land_office,state,meridian,"
                "township,range,section,aliquots,acres,authority", rows)


def township_box(township: int, t_dir: str, range_: int, r_dir: str
                 ) -> tuple[float, float, float, float]:
    """(west, south, east, north) of a township: six miles a side from the meridian."""
    height = 6 / MILES_PER_DEGREE_LAT
    north = BASELINE_LAT - (township - 1) * height if t_dir == "S" else \
        BASELINE_LAT + township * height
    south = north - height
    width = 6 / (MILES_PER_DEGREE_LAT * math.cos(math.radians((north + south) / 2)))
    west = MERIDIAN_LON + (range_ - 1) * width if r_dir == "E" else MERIDIAN_LON - range_ * width
    return (round(west, 6), round(south, 6), round(west + width, 6), round(north, 6))


def plss_townships() -> str:
    """Township corners, as a PLSS extract lists them (BLM CadNSDI style)."""
    rows: list[list[object]] = []
    for township, t_dir, range_, r_dir in sorted(GLO_TOWNSHIPS):
        west, south, east, north = township_box(township, t_dir, range_, r_dir)
        rows.append([f"{township:03d}{t_dir}", f"{range_:03d}{r_dir}", "6th PM", west, south,
                     east, north])
    return _csv("township,range,meridian,west,south,east,north", rows)


# --- khri_sites -----------------------------------------------------------------------------

def khri_sites() -> str:
    """Archaeological sites with precise coordinates: a sensitive-location capture."""
    rng = random.Random(1855)
    features = ("Terrace", "Bend", "Bluff", "Spring", "Draw", "Crossing", "Knoll", "Ford")
    periods = ("Paleoindian", "Archaic", "Woodland", "Plains Village", "Protohistoric",
               "Historic")
    kinds = ("open camp", "village", "lithic scatter", "rock shelter", "homestead",
             "trail segment")
    rows: list[list[object]] = []
    for number in range(1, 31):
        lat = round(rng.uniform(37.2, 39.8), 6)
        lon = round(rng.uniform(-101.8, -95.0), 6)
        name = f"{rng.choice(SURNAMES)} {rng.choice(features)}"
        rows.append([f"14XX{number:03d}", name, rng.choice(periods), rng.choice(kinds),
                     lat, lon, rng.randint(1935, 2015)])
    return _csv("site_number,site_name,period,site_type,latitude,longitude,recorded", rows)


# --- nhgis_tracts ---------------------------------------------------------------------------

NHGIS_GRID = (4, 3)  # columns, rows of synthetic tracts
NHGIS_ORIGIN = (-96.80, 39.10)  # south-west corner
NHGIS_CELL = 0.05


def _tract_codes() -> list[tuple[str, int, int]]:
    cols, rows = NHGIS_GRID
    return [(f"{(row * cols + col + 1) * 100:06d}", col, row)
            for row in range(rows) for col in range(cols)]


def nhgis_table() -> str:
    """An NHGIS-style census table: one row per tract, keyed by GISJOIN."""
    rng = random.Random(2020)
    rows: list[list[object]] = []
    for tract, _, _ in _tract_codes():
        population = rng.randint(1800, 7200)
        rows.append([f"G2009990{tract}", 2020, "20", "999", tract, population,
                     population // 2 + rng.randint(-200, 200)])
    return _csv("GISJOIN,YEAR,STATEA,COUNTYA,TRACTA,total_population,housing_units", rows)


def nhgis_tracts() -> str:
    """Tract polygons as GeoJSON, one feature per line (so line tools can join them)."""
    lines = ['{"type": "FeatureCollection", "name": "KS_tract_2020", "features": [']
    codes = _tract_codes()
    for number, (tract, col, row) in enumerate(codes):
        west = round(NHGIS_ORIGIN[0] + col * NHGIS_CELL, 6)
        south = round(NHGIS_ORIGIN[1] + row * NHGIS_CELL, 6)
        east, north = round(west + NHGIS_CELL, 6), round(south + NHGIS_CELL, 6)
        ring = [[west, south], [east, south], [east, north], [west, north], [west, south]]
        feature = {"type": "Feature", "properties": {"GISJOIN": f"G2009990{tract}"},
                   "geometry": {"type": "Polygon", "coordinates": [ring]}}
        comma = "," if number < len(codes) - 1 else ""
        lines.append(json.dumps(feature) + comma)
    lines.append("]}")
    return "\n".join(lines) + "\n"


# --- kansas_memory --------------------------------------------------------------------------

def kansas_memory_items() -> str:
    """A catalogue of digitised items (letters, photographs, ledgers) by county and year."""
    rng = random.Random(1861)
    counties = ("Douglas", "Ellis", "Finney", "Riley", "Sedgwick", "Shawnee")
    kinds = (("photograph", "Photograph of a sod house"), ("letter", "Letter home from a"
             " homestead claim"), ("diary", "Diary of a wagon journey"),
             ("map", "Hand-drawn map of a township"), ("ledger", "General store ledger"))
    rows: list[list[object]] = []
    for number in range(1, 41):
        kind, title = rng.choice(kinds)
        county = rng.choice(counties)
        rows.append([f"KM-DEMO-{number:05d}", f"{title} ({county} County)", county,
                     rng.randint(1860, 1949), kind])
    return _csv("item_id,title,county,year,format", rows)


# --- where they go --------------------------------------------------------------------------

@dataclass(frozen=True)
class Capture:
    """One raw file of an example family and how ``kfm-prov raw add`` records it."""

    path: str  # relative to the raw zone
    make: Callable[[], str]
    license: str
    attribution: str
    sensitivity: str
    source_uri: str


CAPTURES: tuple[Capture, ...] = (
    Capture("glo_land_patents/patents_batch1.csv", lambda: glo_patents(1), "CC0-1.0",
            f"Bureau of Land Management, General Land Office Records ({SYNTHETIC})", "public",
            "https://glorecords.blm.gov/"),
    Capture("glo_land_patents/plss_townships.csv", plss_townships, "CC0-1.0",
            f"Bureau of Land Management, CadNSDI PLSS ({SYNTHETIC})", "public",
            "https://navigator.blm.gov/"),
    Capture("khri_sites/sites.csv", khri_sites, "CC-BY-4.0",
            f"Kansas Historic Resources Inventory ({SYNTHETIC})", "sensitive-location",
            "https://khri.kansasgis.org/"),
    Capture("nhgis_tracts/nhgis_tract_2020.csv", nhgis_table, "CC-BY-4.0",
            f"IPUMS NHGIS, University of Minnesota ({SYNTHETIC})", "public",
            "https://www.nhgis.org/"),
    Capture("nhgis_tracts/tracts_2020.geojson", nhgis_tracts, "CC-BY-4.0",
            f"IPUMS NHGIS, University of Minnesota ({SYNTHETIC})", "public",
            "https://www.nhgis.org/"),
    Capture("kansas_memory/items.csv", kansas_memory_items, "CC-BY-4.0",
            f"Kansas Historical Society, Kansas Memory ({SYNTHETIC})", "public",
            "https://www.kansasmemory.org/"),
)

# A later capture of the same family: the demo's second version of glo_land_patents.
LATER_CAPTURES: tuple[Capture, ...] = (
    Capture("glo_land_patents/patents_batch2.csv", lambda: glo_patents(2), "CC0-1.0",
            f"Bureau of Land Management, General Land Office Records ({SYNTHETIC})", "public",
            "https://glorecords.blm.gov/"),
)


# What the demo's kfm-prov.toml says about the lake and its families (SPEC §2): the STAC
# collections and DCAT datasets take their titles, descriptions and coverage from here.
FAMILY_METADATA = r'''
[catalog]
title = "Kansas Frontier Matrix: processed data (demo)"
description = "Promoted data products of the kfm-prov demo lake; every source is synthetic."
publisher = { name = "Kansas Frontier Matrix (demo)", url = "https://kfm.example.org/" }

[families.glo_land_patents]
title = "GLO land patents located on the PLSS (synthetic)"
description = """\
Federal land patents in Kansas from General Land Office records, located on the \
Public Land Survey System townships. Synthetic data for the kfm-prov demo."""
keywords = ["land patents", "General Land Office", "PLSS", "Kansas"]
publisher = { name = "Kansas Frontier Matrix (demo)", url = "https://kfm.example.org/" }
contact_point = { name = "KFM data desk (demo)", email = "data@kfm.example.org" }
temporal = { start = 1854-05-30, end = 1900-12-31 }
bbox = [-102.05, 36.99, -94.59, 40.0]

[families.khri_sites]
title = "Historic resource sites on a 0.5-degree grid (synthetic)"
description = """\
Counts of Kansas Historic Resources Inventory sites per 0.5-degree cell; precise \
locations are redacted. Synthetic data for the kfm-prov demo."""
keywords = ["historic sites", "archaeology", "Kansas"]
publisher = { name = "Kansas Frontier Matrix (demo)", url = "https://kfm.example.org/" }
contact_point = { name = "KFM data desk (demo)", email = "data@kfm.example.org" }
bbox = [-102.05, 36.99, -94.59, 40.0]

[families.nhgis_tracts]
title = "Census tracts 2020 with NHGIS attributes (synthetic)"
description = """\
Kansas census tracts of 2020 joined with their NHGIS tables. Synthetic data for \
the kfm-prov demo."""
keywords = ["census", "tracts", "NHGIS", "Kansas"]
publisher = { name = "Kansas Frontier Matrix (demo)", url = "https://kfm.example.org/" }
contact_point = { name = "KFM data desk (demo)", email = "data@kfm.example.org" }
temporal = { start = 2020-01-01, end = 2020-12-31 }

[families.kansas_memory]
title = "Kansas Memory items (synthetic)"
description = """\
A table of digitised items from the Kansas Historical Society's Kansas Memory. \
Synthetic data for the kfm-prov demo."""
keywords = ["archives", "Kansas Memory", "Kansas"]
publisher = { name = "Kansas Frontier Matrix (demo)", url = "https://kfm.example.org/" }
contact_point = { name = "KFM data desk (demo)", email = "data@kfm.example.org" }
bbox = [-102.05, 36.99, -94.59, 40.0]
'''


def record_captures(lake: Lake, captures: Sequence[Capture] = CAPTURES) -> list[str]:
    """Write ``captures`` into the lake's raw zone and record them; their root-relative paths.

    Mutates only ``data/raw/<family>/`` (the files, ``manifest.yml``, ``checksums.sha256``)
    and the index. Recording the same bytes again changes nothing.
    """
    written = []
    for capture in captures:
        path = lake.config.dir("raw") / capture.path
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists() or path.read_text(encoding="utf-8") != capture.make():
            path.write_text(capture.make(), encoding="utf-8")
        lake.raw_add([path], license=capture.license, attribution=capture.attribution,
                     source_uri=capture.source_uri, source_type="synthetic",
                     sensitivity=capture.sensitivity)
        written.append(lake.rel(path))
    return written
