"""A lake of three families and four versions with a cross-family join, built once per
session for the trace, verify and export tests (each test gets a copy it may break)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from kfm_prov.lake import Lake
from tests.conftest import CODE, GEOJSON, add_raw, make_chain

ATTRIBUTION = 'Kansas "Land Office" <GLO> #1 & co'


@dataclass(frozen=True)
class Multi:
    """What ``build_multi`` made: three families, four versions, one cross-family join."""

    glo_raw: str
    glo_a: str
    glo_b: str
    glo_norm: str  # work path
    glo_product: str  # processed path of glo v1
    glo_digest: str
    fam2_raw: str
    fam2_a: str
    fam2_b: str
    fam2b_a: str
    fam2b_b: str
    fam2_v1: str
    fam2_v2: str
    joined: str  # run id
    joined_product: str


def sha(path: Path) -> str:
    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def build_multi(lake: Lake) -> Multi:
    """glo v1; fam2 v1 and v2 (a re-run: the same normalised bytes made twice); joined v1
    from glo's processed product and fam2's work file."""
    glo_raw = add_raw(lake, "data/raw/glo/patents.csv", "id,name\n1,Smith\n2,Jones\n",
                      attribution=ATTRIBUTION, sensitivity="public")
    glo = make_chain(lake, "glo", product=GEOJSON.replace("38.6", "38.7"))
    glo_v1 = lake.promote(glo.b.run_id)
    fam2_raw = add_raw(lake, "data/raw/fam2/wells.csv", "id,depth\n7,120\n", license="CC0-1.0",
                       attribution="KGS", sensitivity="public")
    fam2 = make_chain(lake, "fam2", raw_name="wells.csv")
    fam2_v1 = lake.promote(fam2.b.run_id)
    fam2b = make_chain(lake, "fam2", raw_name="wells.csv",
                       product=GEOJSON.replace("-97.6", "-97.7"))
    fam2_v2 = lake.promote(fam2b.b.run_id)
    with lake.capture("joined", "pipelines/joined/merge", **CODE) as j:
        j.use(lake.root / glo_v1.files[0])
        j.use(fam2b.a.artifacts / "normalised.csv", role="auxiliary")
        j.output("merged.geojson", role="product", sensitivity="public").write_text(
            GEOJSON.replace("38.4", "38.3"))
        j.gate("join", "pass")
    joined_v1 = lake.promote(j.run_id)
    return Multi(glo_raw, glo.a.run_id, glo.b.run_id, f"{glo.a.rel_dir}/artifacts/normalised.csv",
                 glo_v1.files[0], sha(lake.root / glo_v1.files[0]), fam2_raw, fam2.a.run_id,
                 fam2.b.run_id, fam2b.a.run_id, fam2b.b.run_id, fam2_v1.files[0],
                 fam2_v2.files[0], j.run_id, joined_v1.files[0])
