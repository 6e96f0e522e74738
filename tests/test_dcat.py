"""DCAT writer: every required property per distribution (checked by SPARQL on the
re-parsed Turtle), one dataset across versions, byte-stable output, bad input named."""

from __future__ import annotations

import dataclasses
import hashlib
import os
from pathlib import Path
from typing import Any

import pytest
from rdflib import BNode, Graph, Literal, URIRef

from kfm_prov.errors import InputError
from kfm_prov.publish.dcat import dataset_iri, dcat_path, distribution_iri, render_dcat
from kfm_prov.store.release import Release, ReleaseFile

EXPECTED = Path(__file__).parent / "expected"
NS = "https://kfm.example.org/prov/"
PREFIXES = """
PREFIX dcat: <http://www.w3.org/ns/dcat#>
PREFIX dct: <http://purl.org/dc/terms/>
PREFIX foaf: <http://xmlns.com/foaf/0.1/>
PREFIX rdfs: <http://www.w3.org/2000/01/rdf-schema#>
PREFIX prov: <http://www.w3.org/ns/prov#>
PREFIX spdx: <http://spdx.org/rdf/terms#>
PREFIX xsd: <http://www.w3.org/2001/XMLSchema#>
"""


def rfile(path: str, data: bytes, media_type: str) -> ReleaseFile:
    return ReleaseFile(
        path=path,
        digest="sha256:" + hashlib.sha256(data).hexdigest(),
        size=len(data),
        media_type=media_type,
    )


def make_release(version: str = "v1", **overrides: Any) -> Release:
    """A release as the promotion builds it; DCAT never reads the files themselves."""
    base = f"data/processed/parcels/{version}"
    day = "26" if version == "v1" else "28"
    fields: dict[str, Any] = {
        "family": "parcels",
        "version": version,
        "run_id": "01JDQ8X5T4M2S9K7V3B6N1C0AA",
        "promotion_id": f"promotion/parcels/{version}",
        "promoted_at": f"2026-11-{day}T10:00:00Z",
        "run_started_at": f"2026-11-{day}T09:00:00Z",
        "run_ended_at": f"2026-11-{day}T09:30:00Z",
        "pipeline_id": "parcels-etl",
        "git_commit": "3f2a" * 10,
        "spec_hash": "sha256:" + "5e" * 32,
        "license": "CC-BY-4.0",
        "attribution": "Kansas Geological Survey",
        "sensitivity": "public",
        "files": (
            rfile(
                f"{base}/parcels.geojson",
                b'{"type": "FeatureCollection", "features": []}' + version.encode(),
                "application/geo+json",
            ),
            rfile(f"{base}/summary.csv", b"county,parcels\nDouglas,12\n", "text/csv"),
        ),
        "prov_bundle_path": f"data/prov/parcels/{version}.json",
        "certificate_path": f"data/prov/parcels/{version}.certificate.json",
        "namespace": NS,
        "predecessor_version": None if version == "v1" else "v1",
        "title": "Kansas parcels",
    }
    fields.update(overrides)
    return Release(**fields)


def parse(data: bytes) -> Graph:
    return Graph().parse(data=data.decode("utf-8"), format="turtle")


def two_versions(base_url: str | None = None) -> tuple[bytes, bytes]:
    v1 = render_dcat(make_release(), existing=None, base_url=base_url)
    v2 = render_dcat(make_release("v2"), existing=v1, base_url=base_url)
    return v1, v2


def distribution_rows(graph: Graph) -> dict[str, dict[str, Any]]:
    """One row per distribution with every property the SPEC requires; OPTIONAL nowhere,
    so a distribution that lacks one of them drops out and the count tells."""
    rows = graph.query(
        PREFIXES
        + """
        SELECT ?dist ?size ?media ?algo ?value ?license ?activity ?version ?url
        WHERE {
          ?ds a dcat:Dataset ; dcat:distribution ?dist .
          ?dist a dcat:Distribution ;
                dcat:byteSize ?size ;
                dcat:mediaType ?media ;
                spdx:checksum ?ck ;
                dct:license ?license ;
                prov:wasGeneratedBy ?activity ;
                dcat:version ?version ;
                dcat:downloadURL ?url .
          ?ck a spdx:Checksum ; spdx:algorithm ?algo ; spdx:checksumValue ?value .
        }"""
    )
    return {str(r.dist): r.asdict() for r in rows}  # type: ignore[union-attr]


def test_every_distribution_has_the_required_properties() -> None:
    release = make_release()
    rows = distribution_rows(parse(render_dcat(release, existing=None)))
    assert len(rows) == 2
    for rf in release.files:
        name = rf.path.rsplit("/", 1)[1]
        row = rows[str(distribution_iri(NS, "parcels", "v1", name))]
        assert row["size"].datatype == URIRef("http://www.w3.org/2001/XMLSchema#nonNegativeInteger")
        assert row["size"].toPython() == rf.size
        assert row["media"] == URIRef(
            "https://www.iana.org/assignments/media-types/" + rf.media_type
        )
        assert row["algo"] == URIRef("http://spdx.org/rdf/terms#checksumAlgorithm_sha256")
        assert row["value"].datatype == URIRef("http://www.w3.org/2001/XMLSchema#hexBinary")
        assert str(row["value"]).lower() == rf.digest.removeprefix("sha256:")
        assert row["license"] == URIRef("http://spdx.org/licenses/CC-BY-4.0")
        assert row["activity"] == URIRef(NS + "promotion/parcels/v1")
        assert str(row["version"]) == "v1"
        assert row["url"] == URIRef(NS + rf.path)


def test_the_dataset_is_described_once() -> None:
    graph = parse(two_versions()[1])
    rows = list(
        graph.query(
            PREFIXES
            + """
        SELECT ?ds ?title ?id ?license ?holder ?modified WHERE {
          ?ds a dcat:Dataset ; dct:title ?title ; dct:identifier ?id ; dct:license ?license ;
              dct:rightsHolder [ a foaf:Agent ; foaf:name ?holder ] ; dct:modified ?modified .
          ?license a dct:LicenseDocument .
        }"""
        )
    )
    assert len(rows) == 1
    ds, title, ident, lic, holder, modified = rows[0]  # type: ignore[misc]
    assert ds == dataset_iri(NS, "parcels") == URIRef(NS + "dataset/parcels")
    assert (str(title), str(ident), str(holder)) == (
        "Kansas parcels",
        "parcels",
        "Kansas Geological Survey",
    )
    assert lic == URIRef("http://spdx.org/licenses/CC-BY-4.0")
    assert str(modified.toPython().isoformat()) == "2026-11-28T10:00:00+00:00"


def test_two_versions_give_two_sets_of_distributions_under_one_dataset() -> None:
    graph = parse(two_versions()[1])
    rows = distribution_rows(graph)
    assert len(rows) == 4
    by_version: dict[str, set[str]] = {}
    for row in rows.values():
        by_version.setdefault(str(row["version"]), set()).add(str(row["dist"]))
        assert row["activity"] == URIRef(NS + f"promotion/parcels/{row['version']}")
    assert {v: len(d) for v, d in by_version.items()} == {"v1": 2, "v2": 2}
    datasets = set(
        graph.subjects(
            URIRef("http://www.w3.org/1999/02/22-rdf-syntax-ns#type"),
            URIRef("http://www.w3.org/ns/dcat#Dataset"),
        )
    )
    assert datasets == {dataset_iri(NS, "parcels")}


def test_output_is_deterministic_and_matches_the_golden_file() -> None:
    v1, v2 = two_versions()
    assert two_versions() == (v1, v2)
    assert render_dcat(make_release(), existing=None) == v1
    path = EXPECTED / "dcat_family.ttl"
    if os.environ.get("KFM_REGEN_GOLDEN") == "1":
        path.write_bytes(v2)
    assert path.read_bytes() == v2, "dcat_family.ttl changed; regenerate only deliberately"


def test_rendering_a_version_again_changes_nothing() -> None:
    v1, v2 = two_versions()
    assert render_dcat(make_release("v2"), existing=v2) == v2
    assert render_dcat(make_release(), existing=v1) == v1


def test_a_rerendered_version_replaces_its_old_values() -> None:
    v1 = render_dcat(make_release(), existing=None)
    bigger = dataclasses.replace(make_release().files[1], size=999)
    again = render_dcat(make_release(files=(make_release().files[0], bigger)), existing=v1)
    sizes = [
        int(o)
        for o in parse(again).objects(
            distribution_iri(NS, "parcels", "v1", "summary.csv"),
            URIRef("http://www.w3.org/ns/dcat#byteSize"),
        )
    ]
    assert sizes == [999]


def test_no_blank_nodes() -> None:
    graph = parse(two_versions()[1])
    assert not any(isinstance(term, BNode) for triple in graph for term in triple)


def test_base_url_sets_access_and_download_urls() -> None:
    graph = parse(
        render_dcat(make_release(), existing=None, base_url="https://data.example.org/lake")
    )
    urls = {str(u) for u in graph.objects(None, URIRef("http://www.w3.org/ns/dcat#accessURL"))}
    assert urls == {
        "https://data.example.org/lake/data/processed/parcels/v1/parcels.geojson",
        "https://data.example.org/lake/data/processed/parcels/v1/summary.csv",
    }


def test_names_are_percent_encoded_in_iris() -> None:
    rf = rfile("data/processed/parcels/v1/county totals #1.csv", b"x\n", "text/csv")
    graph = parse(render_dcat(make_release(files=(rf,)), existing=None))
    dist = distribution_iri(NS, "parcels", "v1", "county totals #1.csv")
    assert str(dist).endswith("/distribution/parcels/v1/county%20totals%20%231.csv")
    assert (dist, None, None) in graph


def test_spdx_expression_is_kept_as_rights_not_a_license_iri() -> None:
    graph = parse(render_dcat(make_release(license="MIT OR Apache-2.0"), existing=None))
    dct = "http://purl.org/dc/terms/"
    assert not list(graph.objects(None, URIRef(dct + "license")))
    rows = graph.query(PREFIXES + """SELECT DISTINCT ?label WHERE {
        ?d dct:rights ?r . ?r a dct:RightsStatement ; rdfs:label ?label }""")
    assert {str(r[0]) for r in rows} == {"MIT OR Apache-2.0"}  # type: ignore[index]


def test_dcat_path() -> None:
    assert dcat_path("parcels") == "data/catalog/dcat/parcels.ttl"


@pytest.mark.parametrize("data", [b"this is not turtle .", b"<a> <b> ", b"\xff\xfe"])
def test_malformed_existing_turtle_names_the_file(data: bytes) -> None:
    with pytest.raises(InputError) as info:
        render_dcat(make_release("v2"), existing=data)
    assert info.value.file == "data/catalog/dcat/parcels.ttl"


@pytest.mark.parametrize(
    "overrides",
    [
        {"license": "Not-A-License"},
        {"license": "MIT/X11"},
        {"namespace": "not an iri"},
        {"namespace": "https://kfm.example.org/prov"},
        {"promotion_id": "promotion with spaces"},
        {"family": "a/b"},
        {"promoted_at": "yesterday"},
        {"files": ()},
    ],
)
def test_bad_release_fields_are_input_errors(overrides: dict[str, Any]) -> None:
    with pytest.raises(InputError):
        render_dcat(make_release(**overrides), existing=None)


def test_bad_file_fields_are_input_errors() -> None:
    rf = make_release().files[1]
    for bad in (
        dataclasses.replace(rf, digest="sha256:xyz"),
        dataclasses.replace(rf, media_type="csv"),
        dataclasses.replace(rf, size=-5),
        dataclasses.replace(rf, path="/etc/passwd"),
    ):
        with pytest.raises(InputError):
            render_dcat(make_release(files=(bad,)), existing=None)


def test_bad_base_url_is_an_input_error() -> None:
    with pytest.raises(InputError):
        render_dcat(make_release(), existing=None, base_url="lake/relative")


def test_a_file_from_an_earlier_kfm_prov_is_upgraded_to_conform() -> None:
    """Literal rights and untyped licenses of earlier versions are typed on the next
    render; what those distributions say is kept."""
    old_dist = URIRef(NS + "distribution/parcels/v0/old.csv")
    old = f"""
    @prefix dcat: <http://www.w3.org/ns/dcat#> . @prefix dct: <http://purl.org/dc/terms/> .
    <{NS}dataset/parcels> a dcat:Dataset ; dct:rightsHolder "KGS" ; dcat:distribution <{old_dist}> .
    <{old_dist}> a dcat:Distribution ; dct:rights "MIT OR Apache-2.0" ;
        dct:license <http://spdx.org/licenses/MIT> ;
        dcat:mediaType <https://www.iana.org/assignments/media-types/text/plain> .
    """.encode()
    graph = parse(render_dcat(make_release(), existing=old))
    rows = graph.query(PREFIXES + f"""SELECT ?label WHERE {{
        <{old_dist}> dct:rights [ a dct:RightsStatement ; rdfs:label ?label ] ;
            dct:license [ a dct:LicenseDocument ] ; dcat:mediaType [ a dct:MediaType ] }}""")
    assert [str(r[0]) for r in rows] == ["MIT OR Apache-2.0"]  # type: ignore[index]
    assert not any(isinstance(o, Literal) for o in graph.objects(
        None, URIRef("http://purl.org/dc/terms/rightsHolder")))
