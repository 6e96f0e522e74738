"""The layers of docs/architecture.md hold: no import cycle, no import pointing up.

Imports made inside functions count (they exist for start-up speed and must point down
too); imports under ``if TYPE_CHECKING:`` are annotations only and do not.
"""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "kfm_prov"

#: Lowest first; a module may import its own layer and the ones before it.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("kfm_prov", "kfm_prov.errors", "kfm_prov.config", "kfm_prov.core"),
    ("kfm_prov.store",),
    ("kfm_prov.prov",),
    ("kfm_prov.context", "kfm_prov.capture", "kfm_prov.runner", "kfm_prov.record",
     "kfm_prov.validate", "kfm_prov.waive"),
    ("kfm_prov.gate",),
    ("kfm_prov.publish",),
    ("kfm_prov.trace", "kfm_prov.verify", "kfm_prov.export", "kfm_prov.gc",
     "kfm_prov.versions", "kfm_prov.site", "kfm_prov.openlineage"),
    ("kfm_prov.lake", "kfm_prov.demo", "kfm_prov.examples", "kfm_prov.serve"),
    ("kfm_prov.cli",),
)


def _modules() -> dict[str, Path]:
    found = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    found: set[str] = set()

    class Visitor(ast.NodeVisitor):
        def visit_If(self, node: ast.If) -> None:
            if "TYPE_CHECKING" in ast.unparse(node.test):
                for child in node.orelse:
                    self.visit(child)
                return
            self.generic_visit(node)

        def visit_Import(self, node: ast.Import) -> None:
            found.update(a.name for a in node.names if a.name in modules)

        def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join([*base, *([node.module] if node.module else [])])
            else:
                target = node.module or ""
            if target in modules:
                found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names
                         if f"{target}.{a.name}" in modules)

    Visitor().visit(ast.parse(path.read_text(encoding="utf-8")))
    found.discard(name)
    return found


def _graph() -> nx.DiGraph:
    modules = _modules()
    graph = nx.DiGraph()
    for name, path in modules.items():
        graph.add_node(name)
        graph.add_edges_from((name, target) for target in _imports(name, path, modules))
    return graph


def _layer(module: str) -> int:
    best = None
    for number, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if module == prefix or module.startswith(prefix + "."):
                length = len(prefix)
                if best is None or length > best[0]:
                    best = (length, number)
    assert best is not None, f"{module} belongs to no layer of docs/architecture.md"
    return best[1]


def test_the_import_graph_has_no_cycle() -> None:
    cycles = [sorted(c) for c in nx.strongly_connected_components(_graph()) if len(c) > 1]
    assert cycles == []


def test_no_module_imports_a_layer_above_its_own() -> None:
    upward = sorted(f"{a} -> {b}" for a, b in _graph().edges if _layer(b) > _layer(a))
    assert upward == []


def test_the_checker_sees_imports_inside_functions(tmp_path: Path) -> None:
    source = tmp_path / "m.py"
    source.write_text("def f():\n    from kfm_prov.cli import main\n"
                      "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from kfm_prov import lake\n")
    found = _imports("kfm_prov.core.m", source, {"kfm_prov.cli.main": source,
                                                 "kfm_prov.cli": source,
                                                 "kfm_prov.lake": source})
    assert found == {"kfm_prov.cli", "kfm_prov.cli.main"}
    assert _layer("kfm_prov.cli.main") > _layer("kfm_prov.core.m")
