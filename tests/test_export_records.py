"""What the export keeps for catalogs: Turtle's bundle descriptions, JSON-LD's context."""

from __future__ import annotations

import json

from rdflib import Graph

from kfm_prov.lake import Lake
from kfm_prov.publish.promote import PromotionResult
from tests.conftest import Chain, one_error_line


def test_turtle_keeps_each_bundle_described_and_attributed(run_cli, lake: Lake, chain: Chain,
                                                           promoted: PromotionResult) -> None:
    graph = Graph().parse(data=run_cli("export", "--format", "turtle").stdout, format="turtle")
    rows = graph.query(f"""
        PREFIX prov: <http://www.w3.org/ns/prov#>
        PREFIX kfm: <{lake.config.namespace}>
        SELECT ?bundle ?path ?name WHERE {{
          ?bundle a prov:Bundle ; kfm:path ?path ;
                  prov:wasAttributedTo [ a prov:SoftwareAgent ; kfm:name ?name ] .
        }}""")
    paths = {str(r[1]) for r in rows}  # type: ignore[index]
    assert {f"{chain.a.rel_dir}/prov.json", f"{chain.b.rel_dir}/prov.json",
            promoted.prov_bundle} <= paths
    assert {str(r[2]) for r in rows} == {"kfm-prov"}  # type: ignore[index]


def test_jsonld_context_is_a_url_unless_embedded(run_cli, lake: Lake,
                                                 promoted: PromotionResult) -> None:
    default = json.loads(run_cli("export", "--format", "jsonld").stdout)
    assert "https://openprovenance.org/prov-jsonld/context.jsonld" in default["@context"]
    embedded = json.loads(run_cli("export", "--format", "jsonld", "--jsonld-context",
                                  "embed").stdout)
    assert "https://openprovenance.org/prov-jsonld/context.jsonld" not in embedded["@context"]
    result = run_cli("export", "--format", "jsonld", "--jsonld-context", "inline", expect=2)
    assert "--jsonld-context" in result.stderr
    assert one_error_line(result)
