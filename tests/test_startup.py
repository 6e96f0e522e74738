"""A CLI process imports only what its command needs (issue 17: start-up).

Each command runs as a new process with ``python -X importtime`` on a small lake, and the
heavy libraries it must not load are looked for in what it imported. Reading valid receipts
needs no ``jsonschema`` (``fastschema`` decides them); the gate's graph checks and a trace
walk ``LineageGraph``, so ``networkx`` is left to naming a cycle; ``rich`` draws the
tree and the table on a terminal only; ``verify`` parses the DCAT Turtle it checks
(``rdflib``).
The command group loads only the command it runs.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kfm_prov.lake import Lake
from tests.conftest import make_chain

HEAVY = {"jsonschema", "referencing", "networkx", "prov", "rdflib", "pystac", "rich"}


def _modules(root: Path, *args: str, code: int = 0) -> set[str]:
    """Every module a ``kfm-prov`` process imported, from ``-X importtime``."""
    env = {**os.environ, "KFM_PROV_ROOT": str(root)}
    done = subprocess.run([sys.executable, "-X", "importtime", "-m", "kfm_prov.cli", *args],
                          capture_output=True, text=True, env=env, cwd=root, check=False)
    said = [line for line in done.stderr.splitlines() if not line.startswith("import time:")]
    assert done.returncode == code, (done.stdout[-1500:], said[-20:])
    names = set()
    for line in done.stderr.splitlines():
        if line.startswith("import time:") and "|" in line:
            names.add(line.rsplit("|", 1)[1].strip())
    assert "kfm_prov.cli.main" in names  # the parse saw the imports at all
    return names


def _imported(root: Path, *args: str, code: int = 0) -> set[str]:
    """Top-level packages a ``kfm-prov`` process imported."""
    return {name.split(".")[0] for name in _modules(root, *args, code=code)}


@pytest.fixture
def small(lake: Lake) -> tuple[Path, str, str]:
    chain = make_chain(lake)
    return lake.root, chain.b.run_id, chain.product


@pytest.mark.parametrize("command, allowed", [
    (("runs",), set()),  # the table, off a terminal, is plain text
    (("runs", "--format", "json"), set()),
    (("show", "{run}"), set()),
    (("trace", "{product}", "--format", "json"), set()),
    (("trace", "{product}"), set()),  # the tree, off a terminal, is plain text
    (("check", "{run}"), set()),  # linear graph checks; networkx only names a cycle
])
def test_command_imports_only_what_it_needs(small: tuple[Path, str, str],
                                            command: tuple[str, ...],
                                            allowed: set[str]) -> None:
    root, run_id, product = small
    args = [a.format(run=run_id, product=product) for a in command]
    heavy = _imported(root, *args) & HEAVY
    assert heavy <= allowed, f"kfm-prov {' '.join(command)} imported {sorted(heavy - allowed)}"


@pytest.fixture(scope="module")
def published(demo_lake: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """A copy of the demo lake: versions published (STAC, DCAT, attestations), and the run
    the gate refuses for a sensitivity downgrade (the finding names a lineage path)."""
    root = Path(shutil.copytree(demo_lake, tmp_path_factory.mktemp("startup") / "demo",
                                symlinks=True))
    refused, = root.glob("data/work/runs/*/*/refusals")  # the demo's one refused promotion
    return {"root": str(root), "refused": refused.parent.name,
            "product": "data/processed/glo_land_patents/v2/parcels.geojson"}


@pytest.mark.parametrize("command, code, allowed, loaded", [
    (("check", "{refused}"), 1, set(), "promote"),
    (("check", "{refused}", "--json"), 1, set(), "promote"),
    (("show", "{refused}", "--json"), 0, set(), "runs"),
    (("runs", "--format", "id"), 0, set(), "runs"),
    (("trace", "{product}", "--format", "json"), 0, set(), "trace"),
    (("trace", "{product}", "--format", "mermaid"), 0, set(), "trace"),
    (("verify",), 0, {"rdflib"}, "verify"),  # it parses the DCAT Turtle it checks
])
def test_on_a_published_lake_only_the_command_and_what_it_needs(
        published: dict[str, str], command: tuple[str, ...], code: int, allowed: set[str],
        loaded: str) -> None:
    args = [a.format(**published) for a in command]
    modules = _modules(Path(published["root"]), *args, code=code)
    heavy = {m.split(".")[0] for m in modules} & HEAVY
    assert heavy <= allowed, f"kfm-prov {' '.join(command)} imported {sorted(heavy - allowed)}"
    commands = {m.rsplit(".", 1)[1] for m in modules if m.startswith("kfm_prov.cli.commands.")}
    assert commands == {loaded}


def test_an_invalid_receipt_still_gets_named_problems(small: tuple[Path, str, str]) -> None:
    """The lazy path still reaches jsonschema when a receipt is invalid, to name the field."""
    root, run_id, _ = small
    record = next(root.glob(f"data/work/runs/*/{run_id}/run_record.json"))
    record.write_text(record.read_text().replace('"status": "success"', '"status": "maybe"'))
    env = {**os.environ, "KFM_PROV_ROOT": str(root)}
    done = subprocess.run([sys.executable, "-m", "kfm_prov.cli", "validate", str(record)],
                          capture_output=True, text=True, env=env, cwd=root, check=False)
    assert done.returncode != 0
    assert "/status" in done.stdout + done.stderr


def test_every_command_module_is_registered_and_loads_under_its_name() -> None:
    """The group imports a command only when it is named, from a table: a module missing
    from the table would be a command nobody can run."""
    import click

    from kfm_prov.cli import commands
    from kfm_prov.cli.main import COMMANDS, cli

    modules = {p.stem for p in Path(commands.__file__).parent.glob("*.py")} - {"__init__"}
    assert modules == {module for module, _ in COMMANDS.values()}
    ctx = click.Context(cli)
    for name in cli.list_commands(ctx):
        command = cli.get_command(ctx, name)
        assert command is not None and command.name == name
    assert cli.get_command(ctx, "no-such-command") is None


# -- the runs table off a terminal: rich's text, without rich ----------------------------------

CELLS = st.one_of(
    st.text(alphabet=st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
    st.sampled_from(["2026-12-02T06:52:04", ":100:", ":smile:", "[bold]x", "a[/]", "é",
                     "\t", "界", "x" * 60, "", " ", "  two  ", "\\[", "06:52:04:100:"]),
)


@settings(max_examples=400, deadline=None)
@given(headers=st.lists(CELLS.filter(bool), min_size=1, max_size=8), data=st.data())
def test_plain_table_is_what_rich_prints_or_none(headers: list[str],
                                                 data: st.DataObject) -> None:
    import io

    from rich.console import Console
    from rich.table import Table

    from kfm_prov.cli.output import plain_table

    rows = data.draw(st.lists(st.lists(CELLS, min_size=len(headers), max_size=len(headers)),
                              max_size=5))
    text = plain_table(headers, rows)
    if text is None:
        return  # rich prints it
    table = Table(*headers, box=None)
    for row in rows:
        table.add_row(*row)
    buffer = io.StringIO()
    Console(file=buffer, width=220).print(table)  # a MarkupError here: plain_table took markup
    assert text == buffer.getvalue()


def test_plain_table_leaves_markup_emoji_and_wide_text_to_rich() -> None:
    from kfm_prov.cli.output import plain_table

    assert plain_table(["a"], [["2026-12-02T06:52:04"]]) is not None
    for cell in ("[red]x", ":100:", "é", "\x1b[0m", "\t", "x" * 300):
        assert plain_table(["a"], [[cell]]) is None, cell


def test_runs_on_a_terminal_prints_ids_as_typed_not_as_markup(lake: Lake) -> None:
    """A pipeline id is text: on a terminal rich must not read "[/]" as a closing tag
    (a MarkupError, exit 2) nor ":100:" as an emoji."""
    source = lake.root / "data/raw/x/a.csv"
    source.parent.mkdir(parents=True)
    source.write_text("a\n")
    lake.raw_add([source], license="CC0-1.0", attribution="me", sensitivity="public")
    with lake.capture("x", "pipelines/[/]:100:", commit="0" * 40) as run:
        run.use(source)
        run.output("o.csv", sensitivity="public").write_text("a\n")
    env = {**os.environ, "KFM_PROV_ROOT": str(lake.root), "TTY_COMPATIBLE": "1",
           "COLUMNS": "220"}
    done = subprocess.run([sys.executable, "-m", "kfm_prov.cli", "runs"], capture_output=True,
                          text=True, env=env, cwd=lake.root, check=False)
    assert done.returncode == 0, done.stderr
    assert "pipelines/[/]:100:" in done.stdout


@pytest.mark.parametrize("env, tty", [
    ({}, False), ({}, True), ({"FORCE_COLOR": "1"}, False), ({"FORCE_COLOR": ""}, True),
    ({"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"}, True),
    ({"TTY_COMPATIBLE": "1"}, False), ({"TTY_COMPATIBLE": "2"}, False),
])
def test_stdout_is_plain_follows_rich(monkeypatch: pytest.MonkeyPatch, env: dict[str, str],
                                      tty: bool) -> None:
    """Where it says plain, rich would not have treated stdout as a terminal."""
    import io

    from rich.console import Console

    from kfm_prov.cli.output import stdout_is_plain

    class Stream(io.StringIO):
        def isatty(self) -> bool:
            return tty

    for name in ("FORCE_COLOR", "TTY_COMPATIBLE"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr("sys.stdout", Stream())
    assert stdout_is_plain() == (not Console().is_terminal)


# -- the trace tree off a terminal: rich's text, without rich -----------------------------------

PRINTABLE = list("ab ·✓✗│├└─\né界:[]")
LABEL_TEXTS = (st.text(alphabet=st.sampled_from(PRINTABLE), max_size=12),
               st.text(alphabet=st.sampled_from([*PRINTABLE, "\t", "\r", "\x1b", "\x07",
                                                 "\u200b"]), max_size=12))
STYLES = st.sampled_from(["", "bold", "green", "dim italic", "bold red"])


def _branches(draw: st.DrawFn, depth: int, text: st.SearchStrategy[str]) -> object:
    from kfm_prov.trace import Branch

    parts = draw(st.lists(st.tuples(text, STYLES), min_size=1, max_size=3))
    width = draw(st.integers(0, 4 if depth < 4 else 0))
    return Branch(parts, [_branches(draw, depth + 1, text) for _ in range(width)])


@st.composite
def trees(draw: st.DrawFn) -> object:
    """Half of them with printable labels only (the plain path), half with anything."""
    return _branches(draw, 0, LABEL_TEXTS[draw(st.integers(0, 1))])


@settings(max_examples=400, deadline=None)
@given(top=trees(), width=st.sampled_from([100_000, 100_000, 30]))
def test_plain_tree_is_what_rich_prints_or_none(top: object, width: int) -> None:
    import io

    from rich.console import Console

    from kfm_prov.trace import Branch, _rich_tree, plain_tree

    assert isinstance(top, Branch)
    text = plain_tree(top, width=width)
    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, no_color=True,
            highlight=False).print(_rich_tree(top))
    assert text is None or text == buffer.getvalue()
    if width == 100_000 and all(t.replace("\n", "").isprintable()
                                for t in _texts(top)):
        assert text is not None  # the plain path is taken whenever it can be


def _texts(top: object) -> list[str]:
    from kfm_prov.trace import Branch

    assert isinstance(top, Branch)
    pending, found = [top], []
    while pending:
        branch = pending.pop()
        found.append("".join(part for part, _ in branch.parts))
        pending += branch.children
    return found


# -- the light graph trace walks behaves as networkx does, order included ---------------------

NODES = ["run:a", "run:b", "run:c", "file:1", "file:2", "file:3", "file:4"]
OPS = st.lists(st.one_of(
    st.tuples(st.just("node"), st.sampled_from(NODES), st.integers(0, 2)),
    st.tuples(st.just("edge"), st.sampled_from(NODES), st.sampled_from(NODES),
              st.integers(0, 2)),
    st.tuples(st.just("remove"), st.lists(st.sampled_from([*NODES, "file:none"]), max_size=2)),
), max_size=40)


@settings(max_examples=500, deadline=None)
@given(ops=OPS)
def test_lineage_graph_matches_networkx(ops: list[tuple]) -> None:
    import networkx as nx

    from kfm_prov.store.lineage import LineageGraph

    light, reference = LineageGraph(), nx.DiGraph()
    for op in ops:
        for graph in (light, reference):
            if op[0] == "node":
                graph.add_node(op[1], **{f"k{op[2]}": op[2]})
            elif op[0] == "edge":
                graph.add_edge(op[1], op[2], relation=op[3])
            else:
                graph.remove_nodes_from(op[1])
    assert list(light) == list(reference)
    assert [(n, light.nodes[n]) for n in light] == list(reference.nodes(data=True))
    assert light.edges(data=True) == list(reference.edges(data=True))
    for a in NODES:
        assert (a in light) == (a in reference)
        for b in NODES:
            assert light.has_edge(a, b) == reference.has_edge(a, b)
        if a in reference:
            assert light.ancestors(a) == nx.ancestors(reference, a)
            assert list(light.predecessors(a)) == list(reference.predecessors(a))
            assert list(light.successors(a)) == list(reference.successors(a))
            for b in NODES:  # the path a sensitivity finding names, ties broken alike
                if b in reference:
                    try:
                        expected = nx.shortest_path(reference, a, b)
                    except nx.NetworkXNoPath:
                        expected = None
                    assert light.shortest_path(a, b) == expected
    assert light.is_acyclic() == nx.is_directed_acyclic_graph(reference)
    try:
        order = list(nx.lexicographical_topological_sort(reference))
    except nx.NetworkXUnfeasible:
        order = None
    assert light.topological_order() == order
    converted = light.to_networkx()
    assert list(converted.nodes(data=True)) == list(reference.nodes(data=True))
    assert list(converted.edges(data=True)) == list(reference.edges(data=True))
