"""Lineage graphs: networkx views of the index, with string ids and cause → effect edges.

Nodes are ``run:<run id>`` and ``file:sha256:<hex>`` (a content state: files join by
digest, never by name). Edges run from a file to the run that used it and from a run to
the file it generated. Only the part of the lake a question needs is loaded: one breadth-
first pass, a few batched queries per level.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from kfm_prov.index import IoRow, LineageIndex

if TYPE_CHECKING:
    import networkx as nx


def run_node(run_id: str) -> str:
    return f"run:{run_id}"


def file_node(digest: str) -> str:
    return f"file:{digest}"


def _graph() -> nx.DiGraph:
    import networkx as nx

    return nx.DiGraph()


def _add_file(graph: nx.DiGraph, row: IoRow) -> str:
    node = file_node(row.digest)
    if node not in graph:
        graph.add_node(node, kind="file", digest=row.digest, paths={}, raw=None)
    graph.nodes[node]["paths"].setdefault(row.path, row.zone)
    return node


def _add_io(graph: nx.DiGraph, row: IoRow) -> str:
    node = _add_file(graph, row)
    if row.direction == "in":
        graph.add_edge(node, run_node(row.run_id), relation="used", role=row.role, path=row.path)
    else:
        graph.add_edge(run_node(row.run_id), node, relation="generated", role=row.role,
                       path=row.path)
    return node


def _annotate(graph: nx.DiGraph, index: LineageIndex, run_ids: Iterable[str],
              digests: Iterable[str]) -> None:
    for run_id, row in index.runs_by_id(list(run_ids)).items():
        graph.add_node(run_node(run_id), kind="run", **row.to_dict())
    for raw in index.raw_by_digest(list(digests)):
        node = file_node(raw.digest)
        graph.nodes[node]["paths"].setdefault(raw.path, "raw")
        graph.nodes[node]["raw"] = dict(raw.__dict__)
    for promoted in index.promotions_by_digest(list(digests)):
        node = file_node(promoted.digest)
        graph.nodes[node]["paths"].setdefault(promoted.path, "processed")
        graph.nodes[node].setdefault("promotions", []).append(dict(promoted.__dict__))


def ancestry(index: LineageIndex, *, runs: Iterable[str] = (),
             digests: Iterable[str] = ()) -> nx.DiGraph:
    """Everything upstream of the given runs and files, down to raw (and the runs' outputs)."""
    graph = _graph()
    for row in index.files(sorted(set(runs)), "out"):
        _add_io(graph, row)
    return _walk(index, graph, set(runs), set(digests), upstream=True)


def descendants(index: LineageIndex, *, runs: Iterable[str] = (),
                digests: Iterable[str] = ()) -> nx.DiGraph:
    """Everything downstream: the runs that used these files, their outputs, and on."""
    return _walk(index, _graph(), set(runs), set(digests), upstream=False)


def _walk(index: LineageIndex, graph: nx.DiGraph, pending_runs: set[str],
          pending_files: set[str], *, upstream: bool) -> nx.DiGraph:
    """Breadth-first over the index, one batch of queries per level, each node once."""
    for digest in pending_files:
        graph.add_node(file_node(digest), kind="file", digest=digest, paths={}, raw=None)
    run_side = "in" if upstream else "out"
    file_side = index.producers if upstream else index.consumers
    seen_runs: set[str] = set()
    seen_files: set[str] = set()
    while pending_runs or pending_files:
        pending_runs -= seen_runs
        pending_files -= seen_files
        seen_runs |= pending_runs
        seen_files |= pending_files
        next_files: set[str] = set()
        for row in index.files(sorted(pending_runs), run_side):
            _add_io(graph, row)
            next_files.add(row.digest)
        next_runs: set[str] = set()
        for row in file_side(sorted(pending_files)):
            _add_io(graph, row)
            next_runs.add(row.run_id)
        _annotate(graph, index, pending_runs, pending_files)
        pending_runs, pending_files = next_runs, next_files
    return graph


def lake_graph(index: LineageIndex, family: str | None = None) -> nx.DiGraph:
    """Every run (of a family) with its inputs and outputs."""
    graph = _graph()
    run_ids = [r.run_id for r in index.runs(family)]
    digests: set[str] = set()
    for row in index.files(run_ids):
        _add_io(graph, row)
        digests.add(row.digest)
    _annotate(graph, index, run_ids, digests)
    return graph


def node_summary(graph: nx.DiGraph, node: str) -> dict[str, Any]:
    data = dict(graph.nodes[node])
    data["id"] = node
    return data
