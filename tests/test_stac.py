"""STAC writer: validity against offline schemas, the kfm profile, aggregation over
versions, byte-stable output (golden files) and no network."""

from __future__ import annotations

import copy
import dataclasses
import hashlib
import json
import os
import shutil
import socket
from pathlib import Path
from typing import Any

import pystac
import pytest

from kfm_prov.errors import CheckFailed, InputError
from kfm_prov.publish.stac import (
    CATALOG_PATH,
    CERTIFICATE_REL,
    PROVENANCE_REL,
    collection_path,
    existing_stac_files,
    item_path,
    render_stac,
    validate_stac,
)
from kfm_prov.store.release import Release, ReleaseFile

EXPECTED = Path(__file__).parent / "expected"
FAMILY = "parcels"
ITEM_V1 = "data/stac/parcels/parcels-v1/parcels-v1.json"
ITEM_V2 = "data/stac/parcels/parcels-v2/parcels-v2.json"
COLLECTION = "data/stac/parcels/collection.json"

GEOJSON_V1 = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {"n": 1},
            "geometry": {"type": "Point", "coordinates": [-98.5, 38.25]},
        },
        {
            "type": "Feature",
            "properties": {"n": 2},
            "geometry": {"type": "LineString", "coordinates": [[-99.0, 39.0], [-97.25, 37.5]]},
        },
        {"type": "Feature", "properties": {"n": 3}, "geometry": None},
    ],
}
GEOJSON_V2 = {
    "type": "FeatureCollection",
    "features": [
        {
            "type": "Feature",
            "properties": {},
            "geometry": {
                "type": "MultiPolygon",
                "coordinates": [[[[-101.5, 36.0], [-100.0, 36.0], [-100.0, 37.0], [-101.5, 36.0]]]],
            },
        },
    ],
}


def put(root: Path, rel: str, data: bytes, media_type: str) -> ReleaseFile:
    """Place a promoted file under the root and describe it as the promotion would."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return ReleaseFile(
        path=rel,
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        size=len(data),
        media_type=media_type,
    )


def make_release(root: Path, version: str = "v1", **overrides: Any) -> Release:
    """A release with a GeoJSON product and a CSV, like a small real promotion."""
    base = f"data/processed/{FAMILY}/{version}"
    geo = GEOJSON_V1 if version.lower() == "v1" else GEOJSON_V2
    files = (
        put(root, f"{base}/parcels.geojson", json.dumps(geo).encode(), "application/geo+json"),
        put(root, f"{base}/summary.csv", b"county,parcels\nDouglas,12\n", "text/csv"),
    )
    day = "26" if version.lower() == "v1" else "28"
    fields: dict[str, Any] = {
        "family": FAMILY,
        "version": version,
        "run_id": "01JDQ8X5T4M2S9K7V3B6N1C0" + ("AA" if version.lower() == "v1" else "BB"),
        "promotion_id": f"promotion/{FAMILY}/{version}",
        "promoted_at": f"2026-11-{day}T10:00:00Z",
        "run_started_at": f"2026-11-{day}T09:00:00Z",
        "run_ended_at": f"2026-11-{day}T09:30:00Z",
        "pipeline_id": "parcels-etl",
        "git_commit": "3f2a" * 10,
        "spec_hash": "sha256:" + "5e" * 32,
        "license": "CC-BY-4.0",
        "attribution": "Kansas Geological Survey",
        "sensitivity": "public",
        "files": files,
        "prov_bundle_path": f"data/prov/{FAMILY}/{version}.json",
        "certificate_path": f"data/prov/{FAMILY}/{version}.certificate.json",
        "namespace": "https://kfm.example.org/prov/",
        "predecessor_version": None if version.lower() == "v1" else "v1",
        "software": {"kfm-prov": "0.1.0", "parcels-etl": "2.3.1"},
        "lineage": "Parcels normalised from the county shapefiles.",
        "title": "Kansas parcels",
    }
    fields.update(overrides)
    return Release(**fields)


def loads(out: dict[str, bytes], rel: str) -> dict[str, Any]:
    return json.loads(out[rel])


def two_versions(root: Path) -> tuple[dict[str, bytes], dict[str, bytes]]:
    """Render v1 into an empty lake, then v2 on top of it, as two promotions would."""
    out1 = render_stac(make_release(root), existing={}, root=root)
    out2 = render_stac(make_release(root, "v2"), existing=out1, root=root)
    return out1, out2


def write_out(root: Path, out: dict[str, bytes]) -> None:
    for rel, data in out.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)


def check_golden(name: str, data: bytes) -> None:
    """Byte-for-byte comparison; KFM_REGEN_GOLDEN=1 rewrites the file (deliberately)."""
    path = EXPECTED / name
    if os.environ.get("KFM_REGEN_GOLDEN") == "1":
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    assert path.read_bytes() == data, f"{name} changed; regenerate only deliberately"


# --------------------------------------------------------------------------- the item


def test_render_returns_catalog_collection_and_item(tmp_path: Path) -> None:
    out = render_stac(make_release(tmp_path), existing={}, root=tmp_path)
    assert sorted(out) == sorted([CATALOG_PATH, COLLECTION, ITEM_V1])
    assert item_path(FAMILY, "v1") == ITEM_V1
    assert collection_path(FAMILY) == COLLECTION
    assert not (tmp_path / "data" / "stac").exists(), "render_stac must not write"


def test_item_validates_with_its_extensions(tmp_path: Path) -> None:
    out = render_stac(make_release(tmp_path), existing={}, root=tmp_path)
    item = loads(out, ITEM_V1)
    assert item["stac_version"] == "1.1.0"
    assert item["stac_extensions"] == [
        "https://stac-extensions.github.io/file/v2.1.0/schema.json",
        "https://stac-extensions.github.io/processing/v1.2.0/schema.json",
        "https://stac-extensions.github.io/version/v1.2.0/schema.json",
    ]
    for rel in out:
        validate_stac(loads(out, rel), path=rel)
    props = item["properties"]
    assert props["datetime"] == "2026-11-26T09:30:00Z"  # the product's time, within the run
    assert props["created"] == "2026-11-26T10:00:00Z"  # the promotion wrote the item
    assert props["start_datetime"] == "2026-11-26T09:00:00Z"
    assert props["end_datetime"] == "2026-11-26T09:30:00Z"
    assert props["processing:datetime"] == "2026-11-26T09:30:00Z"
    assert props["processing:software"] == {"kfm-prov": "0.1.0", "parcels-etl": "2.3.1"}
    assert props["processing:lineage"].startswith("Parcels normalised")
    assert props["version"] == "v1"
    assert props["kfm:run_id"] == "01JDQ8X5T4M2S9K7V3B6N1C0AA"
    assert props["kfm:spec_hash"] == "sha256:" + "5e" * 32
    assert props["kfm:pipeline_id"] == "parcels-etl"
    assert props["kfm:git_commit"] == "3f2a" * 10
    assert props["kfm:sensitivity"] == "public"
    assert props["license"] == "CC-BY-4.0"
    assert props["providers"] == [{"name": "Kansas Geological Survey", "roles": ["licensor"]}]


def test_item_id_is_lowercase_and_matches_the_file_name(tmp_path: Path) -> None:
    release = make_release(tmp_path, family="Parcels", version="V1")
    out = render_stac(release, existing={}, root=tmp_path)
    rel = "data/stac/Parcels/parcels-v1/parcels-v1.json"
    item = loads(out, rel)
    assert item["id"] == "parcels-v1"
    assert item["collection"] == "Parcels"
    assert item["properties"]["kfm:run_id"].isupper()  # the ULID itself is kept as recorded


def test_assets_carry_multihash_checksum_size_and_relative_href(tmp_path: Path) -> None:
    release = make_release(tmp_path)
    item = loads(render_stac(release, existing={}, root=tmp_path), ITEM_V1)
    assert set(item["assets"]) == {"parcels.geojson", "summary.csv"}
    for rf in release.files:
        asset = item["assets"][rf.path.rsplit("/", 1)[1]]
        assert asset["file:checksum"] == "1220" + rf.digest.removeprefix("sha256:")
        assert len(asset["file:checksum"]) == 68
        assert asset["file:size"] == rf.size == len((tmp_path / rf.path).read_bytes())
        assert asset["type"] == rf.media_type
        assert asset["roles"] == ["data"]
        assert asset["href"] == "../../../processed/parcels/v1/" + rf.path.rsplit("/", 1)[1]


def test_bbox_and_geometry_come_from_the_geojson(tmp_path: Path) -> None:
    item = loads(render_stac(make_release(tmp_path), existing={}, root=tmp_path), ITEM_V1)
    assert item["bbox"] == [-99.0, 37.5, -97.25, 39.0]
    assert item["geometry"] == {
        "type": "Polygon",
        "coordinates": [
            [[-99.0, 37.5], [-97.25, 37.5], [-97.25, 39.0], [-99.0, 39.0], [-99.0, 37.5]]
        ],
    }


def test_a_single_point_gives_a_point_geometry(tmp_path: Path) -> None:
    point = {"type": "Point", "coordinates": [-95.7, 39.05]}
    rf = put(
        tmp_path,
        "data/processed/parcels/v1/site.geojson",
        json.dumps(point).encode(),
        "application/geo+json",
    )
    item = loads(
        render_stac(make_release(tmp_path, files=(rf,)), existing={}, root=tmp_path), ITEM_V1
    )
    assert item["geometry"] == {"type": "Point", "coordinates": [-95.7, 39.05]}
    assert item["bbox"] == [-95.7, 39.05, -95.7, 39.05]


def test_csv_only_release_has_null_geometry_and_no_bbox(tmp_path: Path) -> None:
    rf = put(tmp_path, "data/processed/parcels/v1/summary.csv", b"a,b\n1,2\n", "text/csv")
    out = render_stac(make_release(tmp_path, files=(rf,)), existing={}, root=tmp_path)
    item = loads(out, ITEM_V1)
    assert item["geometry"] is None
    assert "bbox" not in item
    assert loads(out, COLLECTION)["extent"]["spatial"]["bbox"] == [[-180, -90, 180, 90]]


def test_links_to_provenance_certificate_and_hierarchy(tmp_path: Path) -> None:
    release = make_release(tmp_path, derived_from_items=("data/stac/roads/roads-v3/roads-v3.json",))
    item = loads(render_stac(release, existing={}, root=tmp_path), ITEM_V1)
    links = {(lk["rel"], lk["href"]): lk for lk in item["links"]}
    assert (PROVENANCE_REL, "../../../prov/parcels/v1.json") in links
    assert links[(PROVENANCE_REL, "../../../prov/parcels/v1.json")]["type"] == "application/json"
    assert (CERTIFICATE_REL, "../../../prov/parcels/v1.certificate.json") in links
    assert ("derived_from", "../../roads/roads-v3/roads-v3.json") in links
    assert ("root", "../../catalog.json") in links
    assert ("parent", "../collection.json") in links
    assert ("collection", "../collection.json") in links
    assert links[("self", "./parcels-v1.json")]["type"] == "application/geo+json"
    for rel in ("root", "parent", "collection"):
        assert next(lk for lk in item["links"] if lk["rel"] == rel).get("title"), rel
    assert not any(lk["rel"] == "predecessor-version" for lk in item["links"])


def test_every_relative_href_resolves_inside_the_lake(tmp_path: Path) -> None:
    _, out2 = two_versions(tmp_path)
    for rel, data in out2.items():
        doc = json.loads(data)
        hrefs = [lk["href"] for lk in doc["links"]]
        hrefs += [a["href"] for a in doc.get("assets", {}).values()]
        for href in hrefs:
            target = os.path.normpath(os.path.join(os.path.dirname(rel), href))
            assert not target.startswith(".."), (rel, href)
            assert target.startswith("data/"), (rel, href)


# --------------------------------------------------------------------------- versions


def test_v2_links_its_predecessor_and_the_collection_covers_both(tmp_path: Path) -> None:
    out1, out2 = two_versions(tmp_path)
    item2 = loads(out2, ITEM_V2)
    preds = [lk for lk in item2["links"] if lk["rel"] == "predecessor-version"]
    assert preds == [
        {
            "rel": "predecessor-version",
            "href": "../parcels-v1/parcels-v1.json",
            "type": "application/geo+json",
            "title": "parcels v1",
        }
    ]
    # The earlier item gains links to the newer version, and nothing else changes.
    old, new = loads(out1, ITEM_V1), loads(out2, ITEM_V1)
    added = [lk for lk in new["links"] if lk not in old["links"]]
    assert added == [
        {"rel": rel, "href": "../parcels-v2/parcels-v2.json", "type": "application/geo+json",
         "title": "parcels v2"} for rel in ("latest-version", "successor-version")]
    assert {k: v for k, v in new.items() if k != "links"} == {
        k: v for k, v in old.items() if k != "links"}

    coll = loads(out2, COLLECTION)
    box = coll["extent"]["spatial"]["bbox"][0]
    for item in (loads(out1, ITEM_V1), item2):
        b = item["bbox"]
        assert box[0] <= b[0] and box[1] <= b[1] and box[2] >= b[2] and box[3] >= b[3]
    assert box == [-101.5, 36.0, -97.25, 39.0]
    assert coll["extent"]["temporal"]["interval"] == [  # from v1's start to v2's end
        ["2026-11-26T09:00:00Z", "2026-11-28T09:30:00Z"]
    ]
    assert [lk["href"] for lk in coll["links"] if lk["rel"] == "item"] == [
        "./parcels-v1/parcels-v1.json",
        "./parcels-v2/parcels-v2.json",
    ]
    assert coll["license"] == "CC-BY-4.0"


def test_catalog_has_exactly_one_child_after_two_versions(tmp_path: Path) -> None:
    _, out2 = two_versions(tmp_path)
    children = [lk for lk in loads(out2, CATALOG_PATH)["links"] if lk["rel"] == "child"]
    assert [c["href"] for c in children] == ["./parcels/collection.json"]


def test_a_second_family_adds_a_second_child(tmp_path: Path) -> None:
    out1 = render_stac(make_release(tmp_path), existing={}, root=tmp_path)
    rf = put(tmp_path, "data/processed/roads/v1/roads.csv", b"id\n1\n", "text/csv")
    roads = make_release(tmp_path, family="roads", files=(rf,))
    out = render_stac(roads, existing={CATALOG_PATH: out1[CATALOG_PATH]}, root=tmp_path)
    hrefs = [lk["href"] for lk in loads(out, CATALOG_PATH)["links"] if lk["rel"] == "child"]
    assert hrefs == ["./parcels/collection.json", "./roads/collection.json"]


def test_collection_license_is_other_when_items_disagree(tmp_path: Path) -> None:
    out1 = render_stac(make_release(tmp_path), existing={}, root=tmp_path)
    out2 = render_stac(
        make_release(tmp_path, "v2", license="ODbL-1.0"), existing=out1, root=tmp_path
    )
    coll = loads(out2, COLLECTION)
    assert coll["license"] == "other"
    assert sorted(lk["href"] for lk in coll["links"] if lk["rel"] == "license") == [
        "https://spdx.org/licenses/CC-BY-4.0.html",
        "https://spdx.org/licenses/ODbL-1.0.html",
    ]
    assert loads(out2, ITEM_V2)["properties"]["license"] == "ODbL-1.0"


def test_spdx_expression_becomes_other_with_license_links(tmp_path: Path) -> None:
    release = make_release(tmp_path, license="mit OR apache-2.0")
    item = loads(render_stac(release, existing={}, root=tmp_path), ITEM_V1)
    assert item["properties"]["license"] == "other"
    assert sorted(lk["href"] for lk in item["links"] if lk["rel"] == "license") == [
        "https://spdx.org/licenses/Apache-2.0.html",
        "https://spdx.org/licenses/MIT.html",
    ]


def test_rendering_is_idempotent_for_the_same_version(tmp_path: Path) -> None:
    release = make_release(tmp_path)
    out1 = render_stac(release, existing={}, root=tmp_path)
    again = render_stac(release, existing=out1, root=tmp_path)
    assert again == out1


def test_unknown_fields_of_an_existing_collection_are_kept(tmp_path: Path) -> None:
    out1 = render_stac(make_release(tmp_path), existing={}, root=tmp_path)
    coll = loads(out1, COLLECTION)
    coll["keywords"] = ["cadastre"]
    coll["links"].append(
        {"rel": "about", "href": "https://example.org/parcels", "type": "text/html"}
    )
    existing = {**out1, COLLECTION: json.dumps(coll).encode()}
    out2 = render_stac(make_release(tmp_path, "v2"), existing=existing, root=tmp_path)
    new = loads(out2, COLLECTION)
    assert new["keywords"] == ["cadastre"]
    assert any(lk["rel"] == "about" for lk in new["links"])


def test_existing_files_round_trip_through_the_disk(tmp_path: Path) -> None:
    out1, out2 = two_versions(tmp_path)
    write_out(tmp_path, out1)
    existing = existing_stac_files(tmp_path, FAMILY)
    assert sorted(existing) == sorted([CATALOG_PATH, COLLECTION, ITEM_V1])
    assert render_stac(make_release(tmp_path, "v2"), existing=existing, root=tmp_path) == out2


def test_pystac_reads_the_written_catalog_from_a_copy(tmp_path: Path) -> None:
    """Relative hrefs: the catalog still works after the lake is moved."""
    lake = tmp_path / "lake"
    out1, out2 = two_versions(lake)
    write_out(lake, out1)
    write_out(lake, out2)
    moved = tmp_path / "moved"
    shutil.copytree(lake, moved)
    catalog = pystac.Catalog.from_file(str(moved / CATALOG_PATH))
    items = sorted(catalog.get_items(recursive=True), key=lambda i: i.id)
    assert [i.id for i in items] == ["parcels-v1", "parcels-v2"]
    for item in items:
        for asset in item.assets.values():
            assert Path(asset.get_absolute_href() or "").is_file()


# --------------------------------------------------------------------------- determinism


def test_output_is_byte_stable_and_matches_the_golden_files(tmp_path: Path) -> None:
    out1, out2 = two_versions(tmp_path)
    assert two_versions(tmp_path) == (out1, out2)
    check_golden("stac_item_v1.json", out1[ITEM_V1])
    check_golden("stac_item_v2.json", out2[ITEM_V2])
    check_golden("stac_collection_v2.json", out2[COLLECTION])
    check_golden("stac_catalog.json", out2[CATALOG_PATH])
    for data in out2.values():
        assert data.endswith(b"}\n") and not data.endswith(b"\n\n")


def test_output_does_not_depend_on_the_root(tmp_path: Path) -> None:
    a = render_stac(make_release(tmp_path / "a"), existing={}, root=tmp_path / "a")
    b = render_stac(make_release(tmp_path / "b"), existing={}, root=tmp_path / "b")
    assert a == b


# --------------------------------------------------------------------------- no network


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("network access attempted")

    monkeypatch.setattr(socket, "socket", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


def test_render_and_validation_never_touch_the_network(tmp_path: Path, no_network: None) -> None:
    before = pystac.validation.RegisteredValidator._validator
    out1, out2 = two_versions(tmp_path)
    for rel, data in {**out1, **out2}.items():
        validate_stac(json.loads(data), path=rel)
    assert pystac.validation.RegisteredValidator._validator is before, "no global validator"


def test_unvendored_extension_is_refused_not_fetched(tmp_path: Path, no_network: None) -> None:
    item = loads(render_stac(make_release(tmp_path), existing={}, root=tmp_path), ITEM_V1)
    item["stac_extensions"].append("https://stac-extensions.github.io/eo/v2.0.0/schema.json")
    with pytest.raises(InputError, match="no offline schema") as info:
        validate_stac(item, path=ITEM_V1)
    assert info.value.file == ITEM_V1


def test_projection_schema_is_vendored_for_plain_fields(tmp_path: Path, no_network: None) -> None:
    item = loads(render_stac(make_release(tmp_path), existing={}, root=tmp_path), ITEM_V1)
    item["stac_extensions"].append(
        "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
    )
    item["properties"]["proj:code"] = "EPSG:4326"
    validate_stac(item)
    item["properties"]["proj:projjson"] = {"type": "GeographicCRS"}
    with pytest.raises(InputError, match=r"projjson\.schema\.json, which is not available offline"):
        validate_stac(item)


# --------------------------------------------------------------------------- validation


def test_validation_names_the_item_and_the_field(tmp_path: Path) -> None:
    item = loads(render_stac(make_release(tmp_path), existing={}, root=tmp_path), ITEM_V1)
    bad = copy.deepcopy(item)
    bad["properties"]["license"] = "CC BY 4.0"  # spaces: the STAC pattern refuses it
    with pytest.raises(InputError) as info:
        validate_stac(bad, path=ITEM_V1)
    assert "parcels-v1" in info.value.message
    assert info.value.field == "/properties/license"
    assert info.value.file == ITEM_V1


def test_validation_requires_sha256_multihash(tmp_path: Path) -> None:
    item = loads(render_stac(make_release(tmp_path), existing={}, root=tmp_path), ITEM_V1)
    item["assets"]["summary.csv"]["file:checksum"] = "1114" + "ab" * 20  # sha1 multihash
    with pytest.raises(InputError, match="multihash") as info:
        validate_stac(item)
    assert info.value.field == "/assets/summary.csv/file:checksum"


def test_validation_refuses_uppercase_item_ids(tmp_path: Path) -> None:
    item = loads(render_stac(make_release(tmp_path), existing={}, root=tmp_path), ITEM_V1)
    item["id"] = "Parcels-V1"
    with pytest.raises(InputError, match="lowercase"):
        validate_stac(item)


def test_validation_reports_processing_field_errors(tmp_path: Path) -> None:
    item = loads(render_stac(make_release(tmp_path), existing={}, root=tmp_path), ITEM_V1)
    item["properties"]["processing:datetime"] = "2026-11-26T09:30:00+02:00"
    with pytest.raises(InputError, match="processing"):
        validate_stac(item)


# --------------------------------------------------------------------------- bad input


@pytest.mark.parametrize("license_id", ["MIT/X11", "", "Not-A-License-1.0", "GPL-2.0+ OR"])
def test_invalid_license_is_an_input_error(tmp_path: Path, license_id: str) -> None:
    with pytest.raises(InputError) as info:
        render_stac(make_release(tmp_path, license=license_id), existing={}, root=tmp_path)
    assert info.value.field == "license"


def test_geojson_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    rf = put(
        tmp_path,
        "data/processed/parcels/v1/broken.geojson",
        b'{"type": "Feature",',
        "application/geo+json",
    )
    with pytest.raises(InputError) as info:
        render_stac(make_release(tmp_path, files=(rf,)), existing={}, root=tmp_path)
    assert info.value.file == "data/processed/parcels/v1/broken.geojson"
    assert "GeoJSON" in info.value.one_line()


@pytest.mark.parametrize(
    "doc",
    [
        {"type": "Point", "coordinates": [500000.0, 4200000.0]},  # projected, not WGS 84
        {"type": "Point", "coordinates": ["x", 1]},
        {"type": "Hexagon", "coordinates": [1, 2]},
        {"type": "FeatureCollection", "features": {}},
    ],
)
def test_bad_geojson_geometry_names_the_file(tmp_path: Path, doc: dict[str, Any]) -> None:
    rf = put(
        tmp_path,
        "data/processed/parcels/v1/bad.geojson",
        json.dumps(doc).encode(),
        "application/geo+json",
    )
    with pytest.raises(InputError) as info:
        render_stac(make_release(tmp_path, files=(rf,)), existing={}, root=tmp_path)
    assert info.value.file == "data/processed/parcels/v1/bad.geojson"


def test_geojson_with_nan_or_duplicate_keys_is_refused(tmp_path: Path) -> None:
    for raw in (
        b'{"type": "Point", "coordinates": [NaN, 1]}',
        b'{"type": "Point", "type": "Point", "coordinates": [1, 1]}',
    ):
        rf = put(tmp_path, "data/processed/parcels/v1/odd.geojson", raw, "application/geo+json")
        with pytest.raises(InputError):
            render_stac(make_release(tmp_path, files=(rf,)), existing={}, root=tmp_path)


def test_product_changed_since_the_gate_is_a_failed_check(tmp_path: Path) -> None:
    release = make_release(tmp_path)
    (tmp_path / release.files[0].path).write_bytes(json.dumps(GEOJSON_V2).encode())
    with pytest.raises(CheckFailed) as info:
        render_stac(release, existing={}, root=tmp_path)
    assert info.value.file == release.files[0].path


@pytest.mark.parametrize(
    "data",
    [
        b"{not json",
        b"[]",
        b'{"type": "Catalog", "id": "parcels"}',
        b'{"type": "Collection", "id": "parcels", "id": "x"}',
        b"\xff\xfe",
    ],
)
def test_malformed_existing_collection_names_it(tmp_path: Path, data: bytes) -> None:
    with pytest.raises(InputError) as info:
        render_stac(
            make_release(tmp_path, "v2", predecessor_version=None),
            existing={COLLECTION: data},
            root=tmp_path,
        )
    assert info.value.file == COLLECTION


def test_malformed_existing_catalog_names_it(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        render_stac(make_release(tmp_path), existing={CATALOG_PATH: b"{"}, root=tmp_path)
    assert info.value.file == CATALOG_PATH


def test_collection_item_missing_from_existing_is_an_error(tmp_path: Path) -> None:
    out1 = render_stac(make_release(tmp_path), existing={}, root=tmp_path)
    existing = {k: v for k, v in out1.items() if k != ITEM_V1}
    with pytest.raises(InputError, match="bytes were not given") as info:
        render_stac(make_release(tmp_path, "v2"), existing=existing, root=tmp_path)
    assert info.value.file == COLLECTION


def test_predecessor_without_an_item_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(InputError) as info:
        render_stac(make_release(tmp_path, "v2"), existing={}, root=tmp_path)
    assert info.value.field == "predecessor_version"


@pytest.mark.parametrize(
    "overrides",
    [
        {"family": "a/b"},
        {"version": "v1:beta"},
        {"promoted_at": "2026-11-26T10:00:00"},  # no zone
        {"run_started_at": "2026-11-26T10:00:00Z", "run_ended_at": "2026-11-26T09:00:00Z"},
        {"prov_bundle_path": "../outside.json"},
        {"derived_from_items": ("/abs/item.json",)},
        {"files": ()},
    ],
)
def test_bad_release_fields_are_input_errors(tmp_path: Path, overrides: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        render_stac(make_release(tmp_path, **overrides), existing={}, root=tmp_path)


def test_bad_file_fields_are_input_errors(tmp_path: Path) -> None:
    good = make_release(tmp_path)
    rf = good.files[1]
    for bad in (
        dataclasses.replace(rf, digest="md5:abc"),
        dataclasses.replace(rf, digest="sha256:" + "AB" * 32),
        dataclasses.replace(rf, path="data/processed/../../etc/passwd"),
        dataclasses.replace(rf, media_type="csv"),
        dataclasses.replace(rf, size=-1),
    ):
        with pytest.raises(InputError):
            render_stac(dataclasses.replace(good, files=(bad,)), existing={}, root=tmp_path)
