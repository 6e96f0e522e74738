"""``kfm-prov trace``: a lake of several families and versions, traced up, down, and broken."""

from __future__ import annotations

import json
import os
import re

import pytest

from kfm_prov.lake import Lake
from kfm_prov.prov.constraints import check_constraints, validate_prov_json
from kfm_prov.trace import FORMATS, SCHEMA_VERSION, Trace
from tests.conftest import CODE, COMMIT, one_error_line, snapshot, write
from tests.multi import ATTRIBUTION, Multi, sha

pytestmark = pytest.mark.multi_lake


def trace_json(run_cli, *args: str, expect: int = 0) -> dict:
    return json.loads(run_cli("trace", *args, "--json", expect=expect).stdout)


def edges(data: dict) -> set[tuple[str, str, str]]:
    return {(e["from"], e["to"], e["relation"]) for e in data["edges"]}


def run(run_id: str) -> str:
    return f"run:{run_id}"


def file(digest: str) -> str:
    return f"file:{digest}"


# --- the tree ---------------------------------------------------------------------------------

def test_the_tree_goes_from_a_published_file_back_to_its_raw_source(run_cli, lake: Lake,
                                                                      multi: Multi) -> None:
    before = snapshot(lake.root)
    out = run_cli("trace", multi.glo_product).stdout
    assert snapshot(lake.root) == before
    lines = out.splitlines()
    assert lines[0].startswith(f"{multi.glo_product}  sha256:{multi.glo_digest[7:19]} · processed")
    assert "published glo v1" in lines[0]
    for text in (f"run {multi.glo_b}", f"pipelines/glo/parcels @ {COMMIT[:12]}",
                 f"run {multi.glo_a}",
                 "success · validation pass", multi.glo_norm, multi.glo_raw, "license CC-BY-4.0",
                 ATTRIBUTION):
        assert text in out, text
    order = [next(i for i, line in enumerate(lines) if text in line)
             for text in (multi.glo_product, multi.glo_b, multi.glo_norm, multi.glo_a,
                          multi.glo_raw)]
    assert order == sorted(order)  # artifact first, raw source last
    assert "fam2" not in out and "✗" not in out


def test_shared_subtrees_are_shown_once(run_cli, lake: Lake, multi: Multi) -> None:
    with lake.capture("split", "pipelines/split", **CODE) as a:
        a.use(multi.glo_raw)
        a.output("left.csv").write_text("left\n")
        a.output("right.csv").write_text("right\n")
    with lake.capture("split", "pipelines/both", **CODE) as b:
        b.use(a.artifacts / "left.csv")
        b.use(a.artifacts / "right.csv")
        b.output("both.csv").write_text("both\n")
    out = run_cli("trace", f"{b.rel_dir}/artifacts/both.csv").stdout
    runs_of_a = [line for line in out.splitlines() if f"run {a.run_id}" in line]
    assert len(runs_of_a) == 2
    assert "(see above)" not in runs_of_a[0] and runs_of_a[1].endswith("(see above)")
    assert out.count(multi.glo_raw) == 1  # the repeated run's subtree is not repeated


# --- resolving artifacts ------------------------------------------------------------------------

def test_every_kind_of_artifact_resolves(run_cli, lake: Lake, multi: Multi) -> None:
    digest = multi.glo_digest
    item_file = "data/stac/glo/glo-v1/glo-v1.json"
    cases = {
        multi.glo_product: ("path", [file(digest)]),
        digest: ("digest", [file(digest)]),
        digest[7:].upper(): ("digest", [file(digest)]),
        multi.glo_b: ("run", [run(multi.glo_b)]),
        multi.glo_b[:10].lower(): ("run", [run(multi.glo_b)]),
        "glo-v1": ("item", ["item:glo-v1"]),
        "GLO-V1": ("item", ["item:glo-v1"]),
        item_file: ("version", ["item:glo-v1"]),
        "data/processed/glo/v1": ("version", ["item:glo-v1"]),
        "data/prov/glo/v1.certificate.json": ("version", ["item:glo-v1"]),
        "data/processed/fam2": ("family", ["item:fam2-v1", "item:fam2-v2"]),
        multi.glo_raw: ("path", [file(sha(lake.root / multi.glo_raw))]),
        multi.glo_norm: ("path", [file(sha(lake.root / multi.glo_norm))]),
        f"data/work/runs/glo/{multi.glo_a}": ("run", [run(multi.glo_a)]),
    }
    for query, (kind, nodes) in cases.items():
        artifact = trace_json(run_cli, query)["artifact"]
        assert (artifact["kind"], artifact["nodes"]) == (kind, nodes), query
    # a path is read from where the user stands
    os.chdir(lake.root / "data/processed/glo")
    assert trace_json(run_cli, "v1/parcels.geojson")["artifact"]["path"] == multi.glo_product


def test_an_unknown_artifact_is_one_line_and_exit_2(run_cli, lake: Lake) -> None:
    for query in ("no-such-thing", "sha256:" + "0" * 64, "data/raw/glo/nope.csv", "zz-v9"):
        result = run_cli("trace", query, expect=2)
        assert result.stdout == ""
        one_error_line(result)
    write(lake.root / "data/raw/glo/unrecorded.csv", "x\n")
    line = one_error_line(run_cli("trace", "data/raw/glo/unrecorded.csv", expect=2))
    assert "not recorded" in line and "kfm-prov raw add" in line
    outside = write(lake.root.parent / "outside.csv", "x\n")
    line = one_error_line(run_cli("trace", str(outside), expect=2))
    assert "outside the lake root" in line


# --- the JSON lineage ---------------------------------------------------------------------------

def test_the_json_lineage_names_every_node_and_edge(run_cli, lake: Lake, multi: Multi) -> None:
    data = trace_json(run_cli, "glo-v1")
    assert data["schema_version"] == SCHEMA_VERSION and data["ok"] is True
    assert data["direction"] == "up" and data["verified"] is False
    raw, norm = sha(lake.root / multi.glo_raw), sha(lake.root / multi.glo_norm)
    assert edges(data) == {
        (file(raw), run(multi.glo_a), "used"), (run(multi.glo_a), file(norm), "generated"),
        (file(norm), run(multi.glo_b), "used"),
        (run(multi.glo_b), file(multi.glo_digest), "generated"),
        (file(multi.glo_digest), "item:glo-v1", "published")}
    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes[run(multi.glo_a)]["pipeline_id"] == "pipelines/glo/normalise"
    assert nodes[run(multi.glo_a)]["git_commit"] == COMMIT
    assert nodes[run(multi.glo_a)]["validation"] == "pass"
    assert nodes[file(raw)]["raw"][0]["license"] == "CC-BY-4.0"
    assert {c["zone"] for c in nodes[file(multi.glo_digest)]["copies"]} == {"work", "processed"}
    assert nodes["item:glo-v1"]["path"] == "data/stac/glo/glo-v1/glo-v1.json"
    assert data["summary"]["raw_sources"] == [{"path": multi.glo_raw, "digest": raw,
                                               "license": "CC-BY-4.0",
                                               "attribution": ATTRIBUTION}]
    assert Trace.from_dict(data).to_dict() == data


def test_a_processed_input_is_followed_into_its_own_family(run_cli, lake: Lake,
                                                           multi: Multi) -> None:
    data = trace_json(run_cli, multi.joined_product)
    runs = {n["run_id"] for n in data["nodes"] if n["kind"] == "run"}
    # the certified derivation only: the re-run made the same normalised bytes twice, and
    # the joined run read the re-run's file, so that is the run its certificate proved
    assert runs == {multi.joined, multi.glo_a, multi.glo_b, multi.fam2b_a}
    assert {s["path"] for s in data["summary"]["raw_sources"]} == {multi.glo_raw, multi.fam2_raw}
    norm = file(sha(lake.root / f"data/work/runs/fam2/{multi.fam2_a}/artifacts/normalised.csv"))
    assert {(run(multi.fam2b_a), norm, "generated"), (norm, run(multi.joined), "used")} <= edges(
        data)
    # asked about the bytes, both makers are shown
    both = trace_json(run_cli, norm.removeprefix("file:"))
    assert {run(multi.fam2_a), run(multi.fam2b_a)} <= {n["id"] for n in both["nodes"]}


def test_down_lists_every_product_derived_from_a_raw_source(run_cli, lake: Lake,
                                                            multi: Multi) -> None:
    data = trace_json(run_cli, multi.glo_raw, "--down")
    assert data["direction"] == "down" and data["ok"]
    assert data["summary"]["items"] == ["glo-v1", "joined-v1"]
    processed = [d["path"] for d in data["summary"]["derived"] if d["zone"] == "processed"]
    assert processed == [multi.glo_product, multi.joined_product]
    assert multi.glo_norm in {d["path"] for d in data["summary"]["derived"]}
    tree = run_cli("trace", multi.glo_raw, "--down").stdout
    assert "STAC item joined-v1" in tree and "fam2" not in tree.split("joined")[0]
    fam2 = trace_json(run_cli, multi.fam2_raw, "--down")
    assert fam2["summary"]["items"] == ["fam2-v1", "fam2-v2", "joined-v1"]


# --- DOT and Mermaid ----------------------------------------------------------------------------

DOT_STRING = r'"((?:[^"\\]|\\.)*)"'


def parse_dot(text: str) -> tuple[dict[str, str], set[tuple[str, str, str]]]:
    lines = text.splitlines()
    assert lines[0] == "digraph lineage {" and lines[-1] == "}"
    nodes, found = {}, set()
    for line in lines[1:-1]:
        if edge := re.fullmatch(rf"  {DOT_STRING} -> {DOT_STRING} \[label={DOT_STRING}\];",
                                line):
            found.add(edge.groups())
        elif node := re.fullmatch(rf"  {DOT_STRING} \[(.*)\];", line):
            nodes[node.group(1)] = node.group(2)
        else:
            assert re.fullmatch(r"  (rankdir=TB|node \[.*\]|edge \[.*\]);", line), line
    return nodes, found


def parse_mermaid(text: str) -> tuple[dict[str, tuple[str, str]], set[tuple[str, str, str]]]:
    lines = text.splitlines()
    assert lines[0] == "flowchart TB"
    ids = dict(re.findall(r"^  %% (n\d+) = (\S+)$", text, re.M))
    nodes, found = {}, set()
    for line in lines[1:]:
        if node := re.fullmatch(r'  (n\d+)(\(\["|\[\["|\[")([^"]*)("\]\)|"\]\]|"\])', line):
            nodes[ids[node.group(1)]] = (node.group(2), node.group(3))
        elif edge := re.fullmatch(r"  (n\d+) -->\|(\w+)\| (n\d+)", line):
            found.add((ids[edge.group(1)], ids[edge.group(3)], edge.group(2)))
        else:
            assert re.fullmatch(r"  (%% .*|classDef .*;|class [n\d,]+ \w+;)", line), line
    return nodes, found


def test_dot_and_mermaid_have_the_right_nodes_and_edges(run_cli, lake: Lake, multi: Multi) -> None:
    expected = edges(trace_json(run_cli, multi.glo_product))
    raw = sha(lake.root / multi.glo_raw)
    dot = run_cli("trace", multi.glo_product, "--format", "dot").stdout
    nodes, found = parse_dot(dot)
    assert found == expected and len(found) == 5
    assert "shape=box" in nodes[run(multi.glo_a)] and "shape=ellipse" in nodes[file(raw)]
    assert "shape=note" in nodes["item:glo-v1"]
    assert "peripheries=2" in nodes[file(multi.glo_digest)]  # the artifact
    assert r'Kansas \"Land Office\" <GLO> #1 & co' in nodes[file(raw)]  # escaped
    mermaid = run_cli("trace", multi.glo_product, "--format", "mermaid").stdout
    shapes, flow = parse_mermaid(mermaid)
    assert flow == expected
    assert shapes[run(multi.glo_a)][0] == '["' and shapes[file(raw)][0] == '(["'
    assert shapes["item:glo-v1"][0] == '[["'
    assert "Kansas #quot;Land Office#quot; #lt;GLO#gt; #35;1 #38; co" in shapes[file(raw)][1]
    assert [line for line in mermaid.splitlines() if "%%" in line] == sorted(
        (line for line in mermaid.splitlines() if "%%" in line),
        key=lambda line: int(line.split()[1][1:]))
    # deterministic
    assert run_cli("trace", multi.glo_product, "--format", "mermaid").stdout == mermaid


def test_broken_nodes_are_marked_in_dot_and_mermaid(run_cli, lake: Lake, multi: Multi) -> None:
    raw = file(sha(lake.root / multi.glo_raw))
    os.remove(lake.root / multi.glo_raw)
    dot = run_cli("trace", multi.glo_product, "--format", "dot", expect=1).stdout
    nodes, _ = parse_dot(dot)
    assert [n for n, attrs in nodes.items() if "#D00000" in attrs] == [raw]
    mermaid = run_cli("trace", multi.glo_product, "--format", "mermaid", expect=1).stdout
    assert re.search(r"^  class n\d+ broken;$", mermaid, re.M)


# --- PROV-JSON --------------------------------------------------------------------------------

def test_prov_json_is_the_closure_as_one_valid_document(run_cli, lake: Lake, multi: Multi) -> None:
    import prov

    text = run_cli("trace", multi.joined_product, "--format", "prov-json").stdout
    data = json.loads(text)
    assert validate_prov_json(data) == []
    doc = prov.model.ProvDocument.deserialize(content=text, format="json")
    assert check_constraints(doc) == []
    activities = set(data["activity"])
    runs = (multi.joined, multi.glo_a, multi.glo_b, multi.fam2b_a)
    assert {f"kfm:run-{r}" for r in runs} <= activities
    assert {"kfm:promotion-joined-v1", "kfm:promotion-glo-v1"} <= activities
    # one generation per entity (each run's output is an entity of its own)
    generated = [g["prov:entity"] for g in data["wasGeneratedBy"].values()]
    assert len(generated) == len(set(generated))
    assert run_cli("trace", multi.joined_product, "--format", "prov-json").stdout == text


# --- broken lineage ----------------------------------------------------------------------------

def test_an_orphan_input_breaks_the_lineage(run_cli, lake: Lake, multi: Multi) -> None:
    write(lake.root / "data/work/handmade.csv", "made by hand\n")
    with lake.capture("orphan", "pipelines/orphan", **CODE) as r:
        r.use("data/work/handmade.csv")
        r.use(multi.glo_raw)
        r.output("out.csv").write_text("out\n")
    product = f"{r.rel_dir}/artifacts/out.csv"
    result = run_cli("trace", product, expect=1)
    assert "✗ orphan-input" in result.stdout
    assert "data/work/handmade.csv" in result.stdout
    assert "the lineage of" in one_error_line(result) and "orphan-input" in result.stderr
    data = trace_json(run_cli, product, expect=1)
    assert data["ok"] is False
    assert [(i["code"], i["path"]) for i in data["issues"]] == [
        ("orphan-input", "data/work/handmade.csv")]


def test_an_unrecorded_raw_input_and_a_failed_upstream_run(run_cli, lake: Lake,
                                                           multi: Multi) -> None:
    write(lake.root / "data/raw/glo/late.csv", "not recorded\n")
    with pytest.raises(RuntimeError), lake.capture("bad", "pipelines/bad", **CODE) as a:
        a.use("data/raw/glo/late.csv")
        a.output("half.csv").write_text("half\n")
        raise RuntimeError("boom")
    with lake.capture("bad", "pipelines/after", **CODE) as b:
        b.use(a.artifacts / "half.csv")
        b.output("final.csv").write_text("final\n")
    data = trace_json(run_cli, f"{b.rel_dir}/artifacts/final.csv", expect=1)
    codes = {(i["code"], i["node"]) for i in data["issues"]}
    half = file(sha(a.artifacts / "half.csv"))
    late = file(sha(lake.root / "data/raw/glo/late.csv"))
    assert codes == {("upstream-failed", half), ("raw-not-recorded", late)}
    nodes = {n["id"]: n for n in data["nodes"]}
    assert nodes[run(a.run_id)]["status"] == "failed"
    tree = run_cli("trace", b.run_id, expect=1).stdout
    assert "failed · validation" in tree and "✗ upstream-failed" in tree
    assert "✗ raw-not-recorded" in tree


def test_a_missing_file_breaks_the_lineage(run_cli, lake: Lake, multi: Multi) -> None:
    os.remove(lake.root / multi.glo_norm)
    # scratch: the proof rests on raw files, receipts and published files, as for the gate
    data = trace_json(run_cli, "glo-v1")
    [copy] = [c for n in data["nodes"] if n["kind"] == "file" for c in n["copies"]
              if c["path"] == multi.glo_norm]
    assert copy["exists"] is False
    # a deleted work file is still traceable by its recorded path, and missing when asked
    asked = trace_json(run_cli, multi.glo_norm, expect=1)
    assert asked["artifact"]["kind"] == "path"
    assert [i["code"] for i in asked["issues"]] == ["file-missing"]
    os.remove(lake.root / multi.glo_raw)
    data = trace_json(run_cli, "glo-v1", expect=1)
    assert [(i["code"], i["path"]) for i in data["issues"]] == [("file-missing", multi.glo_raw)]
    assert "✗ file-missing" in run_cli("trace", "glo-v1", expect=1).stdout


def test_verify_rehashes_the_closure_and_marks_what_changed(run_cli, lake: Lake,
                                                            multi: Multi) -> None:
    assert run_cli("trace", "glo-v1", "--verify").stdout.count("✓ verified") == 3
    target = lake.root / multi.glo_raw
    os.chmod(target, 0o644)
    target.write_text("id,name\n1,Smith\n2,Jonas\n")
    assert run_cli("trace", "glo-v1").exit_code == 0  # without --verify: not re-hashed
    result = run_cli("trace", "glo-v1", "--verify", expect=1)
    assert f"✗ file-modified: {multi.glo_raw} changed" in result.stdout
    assert "does not match" in one_error_line(result)
    data = trace_json(run_cli, "glo-v1", "--verify", expect=1)
    assert data["verified"] is True
    assert [(i["code"], i["path"]) for i in data["issues"]] == [("file-modified", multi.glo_raw)]
    raw_node = next(n for n in data["nodes"] if n["kind"] == "file" and n["raw"])
    assert raw_node["copies"][0]["verified"] == "modified"


# --- writing nothing, and the API -----------------------------------------------------------------

def test_trace_writes_nothing_in_any_format(run_cli, lake: Lake, multi: Multi) -> None:
    before = snapshot(lake.root)
    for fmt in FORMATS:
        for extra in ((), ("--down",), ("--verify",)):
            assert run_cli("trace", "fam2-v2", "--format", fmt, *extra).stdout
    assert snapshot(lake.root) == before


def test_json_and_format_do_not_go_together(run_cli, lake: Lake) -> None:
    one_error_line(run_cli("trace", "glo-v1", "--json", "--format", "dot", expect=2))


def test_lake_trace_is_the_python_api(lake: Lake, multi: Multi) -> None:
    result = lake.trace("glo-v1")
    assert result.ok and result.target.kind == "item"
    assert {n["kind"] for n in result.nodes.values()} == {"run", "file", "item"}
    down = lake.trace(multi.glo_raw, down=True, base=lake.root)
    assert "item:joined-v1" in down.nodes
