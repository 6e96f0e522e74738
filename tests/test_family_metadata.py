"""``[families.NAME]`` and ``[catalog]`` in kfm-prov.toml: typed in the config, shown by
the STAC collection and the DCAT dataset at each promotion, bad values named."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from rdflib import Graph, Literal, URIRef

from kfm_prov.config import CONFIG_NAME, Agent, FamilyMetadata, load_config
from kfm_prov.errors import InputError
from kfm_prov.lake import Lake
from tests.conftest import make_chain, one_error_line, write

FAMILY = """
[catalog]
title = "Kansas data"
description = "What the Kansas lake publishes."
publisher = { name = "KFM", url = "https://kfm.example.org/" }

[families.glo]
title = "GLO parcels"
description = "Parcels located from GLO patents."
keywords = ["parcels", "GLO", "parcels"]
publisher = { name = "Kansas Geological Survey", url = "https://www.kgs.ku.edu/" }
contact_point = { name = "Data desk", email = "data@kfm.example.org" }
temporal = { start = 1854-05-30, end = 1900-12-31 }
bbox = [-102.05, 36.99, -94.59, 40.0]
"""
DCAT = "http://www.w3.org/ns/dcat#"
DCT = "http://purl.org/dc/terms/"


def configure(lake: Lake, text: str = FAMILY) -> None:
    path = lake.root / CONFIG_NAME
    path.write_text(path.read_text() + text)


def test_the_config_types_every_field(tmp_path: Path) -> None:
    write(tmp_path / CONFIG_NAME, FAMILY)
    config = load_config(tmp_path)
    meta = config.family("glo")
    assert meta == FamilyMetadata(
        title="GLO parcels", description="Parcels located from GLO patents.",
        keywords=("parcels", "GLO"),  # duplicates dropped, order kept
        publisher=Agent("Kansas Geological Survey", url="https://www.kgs.ku.edu/"),
        contact_point=Agent("Data desk", email="data@kfm.example.org"),
        temporal=("1854-05-30", "1900-12-31"), bbox=(-102.05, 36.99, -94.59, 40.0))
    assert meta.to_dict()["temporal"] == {"start": "1854-05-30", "end": "1900-12-31"}
    assert config.family("other") == FamilyMetadata()  # no table: described by its name
    assert config.catalog.title == "Kansas data"
    assert config.catalog.publisher == Agent("KFM", url="https://kfm.example.org/")


@pytest.mark.parametrize(("toml", "field"), [
    ('[families.glo]\ncolour = "red"\n', "families.glo.colour"),
    ('[families.glo]\ntitle = ""\n', "families.glo.title"),
    ('[families.glo]\nkeywords = "parcels"\n', "families.glo.keywords"),
    ('[families.glo]\npublisher = { url = "https://x.org/" }\n', "families.glo.publisher.name"),
    ('[families.glo]\npublisher = { name = "X", url = "ftp://x" }\n',
     "families.glo.publisher.url"),
    ('[families.glo]\ncontact_point = { name = "X", email = "nope" }\n',
     "families.glo.contact_point.email"),
    ('[families.glo]\ntemporal = { start = "1854" }\n', "families.glo.temporal.start"),
    ('[families.glo]\ntemporal = { start = 1900-01-01, end = 1800-01-01 }\n',
     "families.glo.temporal"),
    ('[families.glo]\ntemporal = { start = 1900-01-01T00:00:00 }\n',
     "families.glo.temporal.start"),
    ('[families.glo]\nbbox = [-200, 0, 0, 10]\n', "families.glo.bbox"),
    ('[families.glo]\nbbox = [0, 10, 1, 5]\n', "families.glo.bbox"),
    ('[families."bad name"]\ntitle = "x"\n', "families.bad name"),
    ('[catalog]\nowner = "x"\n', "catalog.owner"),
])
def test_bad_family_metadata_names_the_field(tmp_path: Path, toml: str, field: str) -> None:
    write(tmp_path / CONFIG_NAME, toml)
    with pytest.raises(InputError) as info:
        load_config(tmp_path)
    assert (info.value.file, info.value.field) == (CONFIG_NAME, field)


def test_a_bad_config_is_one_error_line_through_the_cli(run_cli, lake: Lake) -> None:
    configure(lake, '[families.glo]\nbbox = [1, 2]\n')
    line = one_error_line(run_cli("runs", expect=2))
    assert "families.glo.bbox" in line and CONFIG_NAME in line


def _promote(run_cli: Any, lake: Lake, product: str | None = None) -> dict[str, Any]:
    chain = make_chain(lake, product=product) if product else make_chain(lake)
    return json.loads(run_cli("promote", chain.b.run_id, "--json").stdout)


def test_stac_and_dcat_describe_the_family_from_the_config(run_cli, lake: Lake) -> None:
    configure(lake)
    _promote(run_cli, lake)
    coll = json.loads((lake.root / "data/stac/glo/collection.json").read_text())
    assert (coll["title"], coll["description"]) == ("GLO parcels",
                                                    "Parcels located from GLO patents.")
    assert coll["keywords"] == ["parcels", "GLO"]
    assert {"name": "Kansas Geological Survey", "roles": ["host"],
            "url": "https://www.kgs.ku.edu/"} in coll["providers"]
    assert coll["extent"]["spatial"]["bbox"] == [[-102.05, 36.99, -94.59, 40.0]]
    catalog = json.loads((lake.root / "data/stac/catalog.json").read_text())
    assert catalog["title"] == "Kansas data"

    graph = Graph().parse(lake.root / "data/catalog/dcat/glo.ttl", format="turtle")
    dataset = URIRef(lake.config.namespace + "dataset/glo")
    assert graph.value(dataset, URIRef(DCT + "title")) == Literal("GLO parcels")
    assert set(graph.objects(dataset, URIRef(DCAT + "keyword"))) == {Literal("parcels"),
                                                                     Literal("GLO")}
    period = graph.value(dataset, URIRef(DCT + "temporal"))
    assert str(graph.value(period, URIRef(DCAT + "startDate"))) == "1854-05-30"
    contact = graph.value(dataset, URIRef(DCAT + "contactPoint"))
    assert graph.value(contact, URIRef("http://www.w3.org/2006/vcard/ns#hasEmail")) == URIRef(
        "mailto:data@kfm.example.org")
    publisher = graph.value(dataset, URIRef(DCT + "publisher"))
    assert str(graph.value(publisher, URIRef("http://xmlns.com/foaf/0.1/name"))) == (
        "Kansas Geological Survey")
    location = graph.value(dataset, URIRef(DCT + "spatial"))
    assert str(graph.value(location, URIRef(DCAT + "bbox"))).startswith("POLYGON((-102.05 36.99")


def test_without_config_the_family_is_described_by_its_name(run_cli, lake: Lake) -> None:
    _promote(run_cli, lake)
    coll = json.loads((lake.root / "data/stac/glo/collection.json").read_text())
    assert coll["description"] == "Promoted versions of glo."
    assert coll["extent"]["spatial"]["bbox"] == [[-97.6, 38.4, -97.4, 38.6]]  # the product's
    graph = Graph().parse(lake.root / "data/catalog/dcat/glo.ttl", format="turtle")
    dataset = URIRef(lake.config.namespace + "dataset/glo")
    assert graph.value(dataset, URIRef(DCT + "description")) is not None  # DCAT-AP: mandatory
    location = graph.value(dataset, URIRef(DCT + "spatial"))
    assert str(graph.value(location, URIRef(DCAT + "bbox"))) == (
        "POLYGON((-97.6 38.4, -97.4 38.4, -97.4 38.6, -97.6 38.6, -97.6 38.4))")


def test_an_edited_config_shows_at_the_next_promotion(run_cli, lake: Lake) -> None:
    configure(lake)
    _promote(run_cli, lake)
    path = lake.root / CONFIG_NAME
    path.write_text(path.read_text().replace("Parcels located from GLO patents.",
                                             "Parcels, relocated."))
    _promote(run_cli, lake, product='{"type": "FeatureCollection", "features": []}')
    coll = json.loads((lake.root / "data/stac/glo/collection.json").read_text())
    assert coll["description"] == "Parcels, relocated."
    graph = Graph().parse(lake.root / "data/catalog/dcat/glo.ttl", format="turtle")
    assert set(graph.objects(URIRef(lake.config.namespace + "dataset/glo"),
                             URIRef(DCT + "description"))) == {Literal("Parcels, relocated.")}


def test_every_older_version_links_the_latest(run_cli, lake: Lake) -> None:
    for n in range(3):
        _promote(run_cli, lake, product=f'{{"type": "FeatureCollection", "features": [],'
                                        f' "n": {n}}}')
    stac = lake.root / "data/stac/glo"

    def links(version: str, rel: str) -> list[str]:
        item = json.loads((stac / f"glo-{version}/glo-{version}.json").read_text())
        return [lk["href"] for lk in item["links"] if lk["rel"] == rel]

    latest = "../glo-v3/glo-v3.json"
    assert links("v1", "latest-version") == links("v2", "latest-version") == [latest]
    assert links("v3", "latest-version") == []
    assert links("v1", "successor-version") == ["../glo-v2/glo-v2.json"]
    assert links("v2", "successor-version") == [latest]
    assert links("v3", "predecessor-version") == ["../glo-v2/glo-v2.json"]
    run_cli("verify")  # the rewritten older items are valid STAC, nothing dangles
