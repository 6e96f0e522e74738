"""The demo lake's catalogs, checked by the validators catalogs use, offline.

DCAT against the DCAT-AP 3.0.1 SHACL shapes (pyshacl), STAC with stac-validator,
stac-check and pystac, the JSON-LD export against the PROV-JSONLD schema that ships in
the prov wheel. One demo lake, built through the CLI, serves the module; tests only read it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from rdflib import Graph

from kfm_prov.cli.main import cli
from tests.stac_offline import no_network, schema_map, validators

VENDOR = Path(__file__).parent / "data" / "dcat-ap"  # copied from shared/vendor/dcat-ap
DCAT_AP = VENDOR / "dcat-ap-3.0.1-SHACL.ttl"
RECOMMENDED = VENDOR / "3.0.1_html_shacl_shapes_recommended.ttl"
SH = "http://www.w3.org/ns/shacl#"


@dataclass
class DemoLake:
    root: Path
    schemas: dict[str, str]


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> DemoLake:
    base = tmp_path_factory.mktemp("catalogs")
    root = base / "demo-lake"
    result = CliRunner().invoke(cli, ["demo", str(root)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return DemoLake(root, schema_map(base / "schemas"))


def run(root: Path, *args: str, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.chdir(root)
    monkeypatch.delenv("KFM_PROV_ROOT", raising=False)
    result = CliRunner().invoke(cli, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.stdout


def dcat_graph(root: Path) -> Graph:
    graph = Graph()
    for path in sorted((root / "data" / "catalog" / "dcat").glob("*.ttl")):
        graph.parse(path, format="turtle")
    return graph


def shacl(graph: Graph, shapes: Path) -> tuple[bool, list[tuple[str, str, str]]]:
    """pyshacl's verdict and its results as (severity, path, focus node)."""
    import pyshacl

    shape_graph = Graph().parse(shapes, format="turtle")
    conforms, report, _ = pyshacl.validate(graph, shacl_graph=shape_graph, inference="none")
    rows = report.query(f"""PREFIX sh: <{SH}>
        SELECT ?severity ?path ?focus WHERE {{
          ?r a sh:ValidationResult ; sh:resultSeverity ?severity ; sh:focusNode ?focus .
          OPTIONAL {{ ?r sh:resultPath ?path }} }}""")
    return bool(conforms), sorted((str(r[0]).removeprefix(SH), str(r[1]), str(r[2]))  # type: ignore[index]
                                  for r in rows)


# --- DCAT -------------------------------------------------------------------------------------

def test_the_demo_dcat_conforms_to_dcat_ap_3(demo: DemoLake) -> None:
    conforms, results = shacl(dcat_graph(demo.root), DCAT_AP)
    assert conforms, results
    assert results == []


def test_dcat_fills_the_recommended_properties_the_lake_knows(demo: DemoLake) -> None:
    """The recommended shapes still warn about what the lake cannot know (themes from an
    EU vocabulary, languages, agent types); none about what it does know."""
    _, results = shacl(dcat_graph(demo.root), RECOMMENDED)
    known = {"http://purl.org/dc/terms/" + p for p in (
        "description", "spatial", "temporal", "format", "license", "publisher", "issued",
        "modified")} | {"http://www.w3.org/ns/dcat#" + p for p in (
            "keyword", "contactPoint", "distribution", "bbox", "centroid", "startDate",
            "endDate")} | {"http://data.europa.eu/r5r/availability"}
    catalog = "https://kfm.example.org/prov/catalog"  # one per lake, not per family file
    flagged = [r for r in results if r[1] in known and r[2] != catalog]
    assert flagged == []


def test_dcat_has_a_catalog_of_every_family_with_agents_and_coverage(demo: DemoLake) -> None:
    graph = dcat_graph(demo.root)
    rows = graph.query("""
        PREFIX dcat: <http://www.w3.org/ns/dcat#>
        PREFIX dct: <http://purl.org/dc/terms/>
        PREFIX foaf: <http://xmlns.com/foaf/0.1/>
        SELECT ?id ?title ?publisher ?holder ?bbox WHERE {
          ?catalog a dcat:Catalog ; dcat:dataset ?ds .
          ?ds dct:identifier ?id ; dct:title ?title ; dct:description ?d ;
              dct:publisher [ a foaf:Agent ; foaf:name ?publisher ] ;
              dct:rightsHolder [ a foaf:Agent ; foaf:name ?holder ] ;
              dct:spatial [ dcat:bbox ?bbox ] .
        }""")
    by_id = {str(r[0]): r for r in rows}  # type: ignore[index]
    assert set(by_id) == {"glo_land_patents", "khri_sites", "nhgis_tracts", "kansas_memory"}
    assert str(by_id["glo_land_patents"][1]) == (  # type: ignore[index]
        "GLO land patents located on the PLSS (synthetic)")  # from [families.NAME]
    assert all(str(r[2]) == "Kansas Frontier Matrix (demo)" for r in by_id.values())  # type: ignore[index]
    assert str(by_id["glo_land_patents"][4]).startswith("POLYGON((-102.05 36.99")  # type: ignore[index]


def test_sparql_joins_dcat_and_prov_by_iri(demo: DemoLake,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """An auditor loads the DCAT and the PROV export into one graph: each distribution's
    PROV entity is generated by the promotion the distribution names, no string glue."""
    graph = dcat_graph(demo.root)
    graph.parse(data=run(demo.root, "export", "--format", "turtle", monkeypatch=monkeypatch),
                format="turtle")
    rows = list(graph.query("""
        PREFIX dcat: <http://www.w3.org/ns/dcat#>
        PREFIX prov: <http://www.w3.org/ns/prov#>
        SELECT ?dist ?entity WHERE {
          ?dist a dcat:Distribution ; prov:specializationOf ?entity ;
                prov:wasGeneratedBy ?promotion .
          ?entity a prov:Entity ; prov:wasGeneratedBy ?promotion .
          ?promotion a prov:Activity .
        }"""))
    distributions = set(graph.subjects(
        predicate=None, object=None)) & {r[0] for r in rows}  # type: ignore[index]
    assert len(rows) == len(distributions) == 5  # five promoted versions, one file each


# --- STAC -------------------------------------------------------------------------------------

def test_stac_validator_accepts_the_whole_catalog_offline(
        demo: DemoLake, monkeypatch: pytest.MonkeyPatch) -> None:
    validator_cli, _ = validators(monkeypatch, demo.schemas)
    no_network(monkeypatch)
    args = ["validate", "--recursive", "--links"]
    for url, path in demo.schemas.items():
        args += ["--schema-map", url, path]
    monkeypatch.chdir(demo.root)
    result = CliRunner().invoke(validator_cli, [*args, "data/stac/catalog.json"])
    assert result.exit_code == 0, result.output
    text = result.stdout[result.stdout.index("["):]
    report, _ = json.JSONDecoder().raw_decode(text)  # a summary follows the JSON
    assert [r["valid_stac"] for r in report] == [True] * len(report)
    kinds = sorted(r["asset_type"] for r in report)
    assert kinds == ["CATALOG"] + ["COLLECTION"] * 4 + ["ITEM"] * 5


def test_stac_check_has_no_warning_that_applies(demo: DemoLake,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """stac-check's best practices, every object. Its coordinate-order heuristic (BETA)
    flags any longitude past ±90, which Kansas has; that one is not ours to fix."""
    _, linter = validators(monkeypatch, demo.schemas)
    no_network(monkeypatch)
    stac = demo.root / "data" / "stac"
    documents = sorted(stac.rglob("*.json"))
    assert len(documents) == 10
    for path in documents:
        lint: Any = linter(str(path))  # type: ignore[operator]
        assert lint.valid_stac, (path, lint.error_msg)
        practices = [m for m in lint.best_practices_msg if m.strip()
                     and m.strip() != "STAC Best Practices:"]
        assert practices == [], (path.relative_to(stac), practices)


def test_pystac_reads_and_validates_every_object_offline(
        demo: DemoLake, monkeypatch: pytest.MonkeyPatch) -> None:
    import pystac
    from pystac.validation import JsonSchemaSTACValidator

    checker = JsonSchemaSTACValidator()
    for url, path in demo.schemas.items():
        checker.schema_cache[url] = json.loads(Path(path).read_text("utf-8"))
    monkeypatch.setattr(pystac.validation.RegisteredValidator, "_validator", checker)
    no_network(monkeypatch)
    catalog = pystac.Catalog.from_file(str(demo.root / "data" / "stac" / "catalog.json"))
    assert catalog.validate_all() == 5  # items; pytest turns any pystac warning into an error
    catalog.validate()
    collections = list(catalog.get_collections())
    assert len(collections) == 4
    for collection in collections:
        collection.validate()
        assert collection.summaries.lists  # pystac reads the summaries back


def _items(root: Path, family: str) -> list[dict[str, Any]]:
    folder = root / "data" / "stac" / family
    return [json.loads(p.read_text()) for p in sorted(folder.glob("*/*.json"))]


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_items_and_collections_agree_in_time_and_links(demo: DemoLake) -> None:
    stac = demo.root / "data" / "stac"
    for coll_path in sorted(stac.glob("*/collection.json")):
        coll = json.loads(coll_path.read_text())
        items = _items(demo.root, coll["id"])
        start, end = (_time(t) for t in coll["extent"]["temporal"]["interval"][0])
        for item in items:
            p = item["properties"]
            assert _time(p["start_datetime"]) <= _time(p["datetime"]) <= _time(
                p["end_datetime"]), item["id"]
            assert start <= _time(p["start_datetime"]) and _time(p["end_datetime"]) <= end
            rels = {lk["rel"]: lk for lk in item["links"]}
            assert rels["self"]["href"] == f"./{item['id']}.json"
            assert rels["root"]["title"] and rels["parent"]["title"]
        rels = {lk["rel"]: lk for lk in coll["links"]}
        assert rels["self"]["href"] == "./collection.json"
        assert rels["root"]["title"] and rels["parent"]["title"]
        assert coll["summaries"]["version"] == [i["properties"]["version"] for i in items]
        assert coll["title"] and coll["keywords"]  # from [families.NAME]


def test_an_older_version_links_the_latest(demo: DemoLake) -> None:
    v1, v2 = _items(demo.root, "glo_land_patents")
    assert (v1["id"], v2["id"]) == ("glo_land_patents-v1", "glo_land_patents-v2")
    latest = [lk["href"] for lk in v1["links"] if lk["rel"] == "latest-version"]
    assert latest == ["../glo_land_patents-v2/glo_land_patents-v2.json"]
    assert not any(lk["rel"] == "latest-version" for lk in v2["links"])


# --- PROV-JSONLD ------------------------------------------------------------------------------

def test_jsonld_export_validates_against_the_prov_jsonld_schema(
        demo: DemoLake, monkeypatch: pytest.MonkeyPatch) -> None:
    import jsonschema
    from prov import tests as prov_tests

    schema_path = Path(prov_tests.__file__).parent / "schemas" / "prov-jsonld.schema.json"
    schema = json.loads(schema_path.read_text("utf-8"))
    checker = jsonschema.Draft7Validator(schema)
    default = json.loads(run(demo.root, "export", "--format", "jsonld", monkeypatch=monkeypatch))
    assert "https://openprovenance.org/prov-jsonld/context.jsonld" in default["@context"]
    assert [e.message for e in checker.iter_errors(default)] == []
    embedded = json.loads(run(demo.root, "export", "--format", "jsonld", "--jsonld-context",
                              "embed", monkeypatch=monkeypatch))
    assert all(isinstance(c, dict) for c in embedded["@context"])  # today's offline form
    assert default["@graph"] == embedded["@graph"]
