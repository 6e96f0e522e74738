"""``kfm-prov export``: six serializations that re-read to the same document."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import prov
import pytest
from prov.model import ProvDocument

from kfm_prov.export import FORMATS, SUFFIXES, Scope, collect
from kfm_prov.lake import Lake
from kfm_prov.prov.constraints import check_constraints, load_prov_document
from kfm_prov.prov.document import version_file_id
from kfm_prov.prov.merge import (
    build_document,
    flat_document,
    quiet_rdflib,
    without_implied_relations,
)
from tests.conftest import one_error_line, snapshot
from tests.multi import Multi, sha

READ = {"prov-json": {"format": "json"}, "provn": {"format": "provn"},
        "provx": {"format": "xml"}, "jsonld": {"format": "jsonld"},
        "turtle": {"format": "rdf", "rdf_format": "turtle"},
        "trig": {"format": "rdf", "rdf_format": "trig"}}
PROV_NS = "http://www.w3.org/ns/prov#"


pytestmark = pytest.mark.multi_lake


def export_to(run_cli, lake: Lake, fmt: str, *scope: str) -> tuple[Path, str]:
    """Export with -o; assert that only the output file appeared. Returns (file, stderr)."""
    target = lake.root.parent / f"out{SUFFIXES[fmt]}"
    before = snapshot(lake.root.parent)
    result = run_cli("export", *scope, "--format", fmt, "-o", str(target))
    after = snapshot(lake.root.parent)
    assert set(after) - set(before) == {target.name}
    assert {k: v for k, v in after.items() if k != target.name} == before
    return target, result.stderr


def read(path: Path, fmt: str) -> ProvDocument:
    with quiet_rdflib():
        return prov.read(path, **READ[fmt])


def expected_document(lake: Lake, *scope: str) -> ProvDocument:
    options = dict(zip(("family", "run", "artifact"), (None, None, None), strict=True))
    for flag, value in zip(scope[::2], scope[1::2], strict=True):
        options[flag.lstrip("-")] = value
    return build_document(lake.config, collect(lake.config, Scope(**options)))


# --- round trips --------------------------------------------------------------------------------

@pytest.mark.parametrize("fmt", ["prov-json", "provn", "provx", "jsonld"])
def test_the_plain_formats_reread_to_an_equal_document(run_cli, lake: Lake, fmt: str) -> None:
    path, _ = export_to(run_cli, lake, fmt)
    doc = expected_document(lake)
    back = read(path, fmt)
    assert back == doc
    assert len(list(back.bundles)) == len(list(doc.bundles)) == 4 + len(lake.runs())
    assert check_constraints(back) == []


def test_trig_keeps_bundles_as_named_graphs_and_rereads_equal_but_for_direct_triples(
        run_cli, lake: Lake) -> None:
    path, _ = export_to(run_cli, lake, "trig")
    doc = expected_document(lake)
    back = read(path, "trig")
    assert {str(b.identifier) for b in back.bundles} == {str(b.identifier) for b in doc.bundles}
    # prov's RDF reader turns each direct triple into one more, bare, relation
    assert back != doc
    assert without_implied_relations(back) == without_implied_relations(doc)
    assert check_constraints(back) == []


def test_turtle_is_one_valid_graph_and_rereads_as_the_flat_document(run_cli, lake: Lake,
                                                                    multi: Multi) -> None:
    path, stderr = export_to(run_cli, lake, "turtle")
    doc = expected_document(lake)
    flat, folded = flat_document(doc)
    back = read(path, "turtle")
    assert list(back.bundles) == []
    assert without_implied_relations(back) == without_implied_relations(flat)
    assert check_constraints(back) == []  # valid though fam2's re-run made its bytes twice
    # each run's output is an entity of its own: nothing is generated twice, nothing folded
    assert folded == []
    assert stderr.startswith("wrote")
    norm = sha(lake.root / f"data/work/runs/fam2/{multi.fam2_a}/artifacts/normalised.csv")
    plain = without_implied_relations(back)
    general = f"kfm:file-work-{norm[7:]}"
    specific = {str(r.formal_attributes[0][1]) for r in plain.get_records()
                if r.get_type().localpart == "Specialization"
                and str(r.formal_attributes[1][1]) == general}
    generated_by = {str(r.formal_attributes[1][1]) for r in plain.get_records()
                    if r.get_type().localpart == "Generation"
                    and str(r.formal_attributes[0][1]) in specific}
    assert generated_by == {f"kfm:run-{multi.fam2_a}", f"kfm:run-{multi.fam2b_a}"}


def test_turtle_of_one_family_without_reruns_has_no_note(run_cli, lake: Lake) -> None:
    path, stderr = export_to(run_cli, lake, "turtle", "--family", "glo")
    assert stderr.startswith("wrote")
    back = read(path, "turtle")
    flat, folded = flat_document(expected_document(lake, "--family", "glo"))
    assert folded == []
    assert without_implied_relations(back) == without_implied_relations(flat)
    assert check_constraints(back) == []


# --- PROV-O for SPARQL users --------------------------------------------------------------------

def test_prov_o_carries_the_direct_relations(run_cli, lake: Lake, multi: Multi) -> None:
    from rdflib import Dataset, Graph, Namespace, URIRef

    P = Namespace(PROV_NS)
    kfm = Namespace(lake.config.namespace)
    path, _ = export_to(run_cli, lake, "trig")
    data = Dataset()
    with quiet_rdflib():
        data.parse(path, format="trig")
    graph = data.graph(URIRef(kfm["bundle-fam2-v2"]))
    v2 = sha(lake.root / multi.fam2_v2)[7:]
    new = kfm[version_file_id("fam2", "v2", multi.fam2_v2)]
    old = kfm[version_file_id("fam2", "v1", multi.fam2_v1)]
    assert (new, P.wasRevisionOf, old) in graph
    assert (new, P.specializationOf, kfm[f"file-processed-{v2}"]) in graph
    assert (new, P.wasGeneratedBy, kfm["promotion-fam2-v2"]) in graph
    [source] = set(graph.objects(new, P.wasDerivedFrom)) - {old}  # a revision derives too
    assert (source, P.specializationOf, kfm[f"file-work-{v2}"]) in graph
    assert (kfm["promotion-fam2-v2"], P.used, source) in graph
    assert any(graph.triples((kfm[f"run-{multi.fam2b_b}"], P.wasAssociatedWith, None)))
    ttl, _ = export_to(run_cli, lake, "turtle", "--artifact", multi.joined_product)
    flat = Graph()
    flat.parse(ttl, format="turtle")
    product = kfm[version_file_id("joined", "v1", multi.joined_product)]
    sources = {str(row[0]) for row in flat.query(
        "SELECT ?src WHERE { ?p prov:wasDerivedFrom+ ?src }",
        initNs={"prov": P}, initBindings={"p": product})}
    assert kfm[f"file-raw-{sha(lake.root / multi.glo_raw)[7:]}"] in {URIRef(s) for s in sources}
    assert kfm[f"file-raw-{sha(lake.root / multi.fam2_raw)[7:]}"] in {URIRef(s) for s in sources}


def test_rdf_output_is_byte_identical_across_processes(lake: Lake) -> None:
    def export(fmt: str, seed: str) -> bytes:
        env = {**os.environ, "PYTHONHASHSEED": seed, "KFM_PROV_ROOT": str(lake.root)}
        return subprocess.run([sys.executable, "-m", "kfm_prov.cli", "export", "--format", fmt],
                              env=env, check=True, capture_output=True).stdout

    for fmt in ("turtle", "trig"):
        first = export(fmt, "1")
        assert first == export(fmt, "2") == export(fmt, "3"), fmt
        assert b"_:N" not in first  # no random blank node labels


def test_every_format_is_deterministic_in_process(run_cli, lake: Lake) -> None:
    for fmt in FORMATS:
        assert run_cli("export", "--format", fmt).stdout_bytes == run_cli(
            "export", "--format", fmt).stdout_bytes, fmt


def test_jsonld_embed_inlines_its_context(run_cli, lake: Lake,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    import socket

    from rdflib import Dataset

    text = run_cli("export", "--format", "jsonld", "--family", "fam2",
                   "--jsonld-context", "embed").stdout
    assert all(isinstance(c, dict) for c in json.loads(text)["@context"])  # no URL

    def no_network(*args: object, **kwargs: object) -> None:
        raise AssertionError("JSON-LD processing tried the network")

    monkeypatch.setattr(socket, "socket", no_network)
    data = Dataset()
    with quiet_rdflib():
        data.parse(data=text, format="json-ld")  # a generic JSON-LD processor, offline
    assert len(list(data.graphs())) >= 7  # the top level and one graph per bundle
    assert sum(len(g) for g in data.graphs()) > 200


# --- scopes ----------------------------------------------------------------------------------

def test_scopes_select_the_documents(lake: Lake, multi: Multi) -> None:
    def sources(**scope: str) -> tuple[set[str], list[str]]:
        found = collect(lake.config, Scope(**scope))
        return {r for r, _ in found.runs}, list(found.bundles)

    assert sources(family="fam2") == ({multi.fam2_a, multi.fam2_b, multi.fam2b_a, multi.fam2b_b},
                                      ["data/prov/fam2/v1.json", "data/prov/fam2/v2.json"])
    assert sources(run=multi.glo_a[:10]) == ({multi.glo_a}, [])
    runs, bundles = sources(artifact="joined-v1")
    assert runs == {multi.joined, multi.glo_a, multi.glo_b, multi.fam2b_a}  # as certified
    assert bundles == ["data/prov/glo/v1.json", "data/prov/joined/v1.json"]
    everything = sources()
    assert len(everything[0]) == 7 and len(everything[1]) == 4


def test_an_artifact_export_is_its_lineage(run_cli, lake: Lake, multi: Multi) -> None:
    doc = ProvDocument.deserialize(
        content=run_cli("export", "--artifact", "glo-v1").stdout, format="json")
    assert {b.identifier.localpart for b in doc.bundles} == {
        f"run-doc-{multi.glo_a}", f"run-doc-{multi.glo_b}", "bundle-glo-v1"}
    assert check_constraints(doc) == []


def test_bad_scopes_are_one_line_and_exit_2(run_cli, lake: Lake, multi: Multi) -> None:
    line = one_error_line(run_cli("export", "--family", "glo", "--run", multi.glo_a, expect=2))
    assert "do not go together" in line
    one_error_line(run_cli("export", "--family", "nope", expect=2))
    one_error_line(run_cli("export", "--artifact", "nope", expect=2))
    line = one_error_line(run_cli("export", "--artifact", multi.glo_raw, expect=2))
    assert "no PROV to export" in line


def test_export_to_stdout_writes_nothing(run_cli, lake: Lake) -> None:
    before = snapshot(lake.root)
    for fmt in FORMATS:
        assert run_cli("export", "--format", fmt).stdout
    assert snapshot(lake.root) == before


def test_every_export_passes_prov_check(run_cli, lake: Lake) -> None:
    for fmt in FORMATS:
        path, _ = export_to(run_cli, lake, fmt)
        assert check_constraints(load_prov_document(path)) == [], fmt
        result = run_cli("prov-check", str(path))
        assert result.stdout.startswith(f"{path}: valid PROV"), fmt


def test_lake_export_is_the_python_api(lake: Lake) -> None:
    result = lake.export(Scope(family="glo"), "provn")
    assert result.data.startswith(b"document") and result.notes == ()
    assert len(result.sources.runs) == 2
