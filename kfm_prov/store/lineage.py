"""Lineage graphs: networkx views of the index, with string ids and cause → effect edges.

Nodes are ``run:<run id>`` and ``file:sha256:<hex>`` (a content state: files join by
digest, never by name). Edges run from a file to the run that used it and from a run to
the file it generated. Only the part of the lake a question needs is loaded: one recursive
query finds the runs of the closure, a few batched queries fetch their rows
(:class:`ClosureView`), and the breadth-first pass runs in memory. A closure too large
for that (see ``LineageStore.closure_runs``) is walked with a few queries per level.

The walks build a :class:`LineageGraph`, a small directed graph with the part of
``networkx.DiGraph``'s interface they use, so ``trace`` answers without importing
``networkx`` (a third of a cold start). :func:`ancestry` and :func:`descendants` still
return a ``networkx.DiGraph`` to callers who want graph algorithms; ``light=True`` keeps
the light one.
"""

from __future__ import annotations

import heapq
from collections import defaultdict
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from kfm_prov.store.index import IoRow, PromotionRow, RawRow, RedactionRow, RunRow
from kfm_prov.store.protocol import LineageStore

if TYPE_CHECKING:
    import networkx as nx


def run_node(run_id: str) -> str:
    return f"run:{run_id}"


def file_node(digest: str) -> str:
    return f"file:{digest}"


class LineageGraph:
    """A directed graph with attributes, the subset of ``networkx.DiGraph`` the walks use.

    Same semantics and iteration order as ``networkx`` for what it has: ``add_node`` and
    ``add_edge`` update attributes, nodes and edges iterate in insertion order.
    ``to_networkx()`` gives the same graph as a ``networkx.DiGraph``.
    """

    def __init__(self) -> None:
        self.nodes: dict[str, dict[str, Any]] = {}
        self._succ: dict[str, dict[str, dict[str, Any]]] = {}
        self._pred: dict[str, dict[str, dict[str, Any]]] = {}

    def __contains__(self, node: object) -> bool:
        return node in self.nodes

    def __iter__(self) -> Iterator[str]:
        return iter(self.nodes)

    def __len__(self) -> int:
        return len(self.nodes)

    def add_node(self, node: str, **attrs: Any) -> None:
        if node not in self.nodes:
            self.nodes[node] = {}
            self._succ[node] = {}
            self._pred[node] = {}
        self.nodes[node].update(attrs)

    def add_edge(self, a: str, b: str, **attrs: Any) -> None:
        self.add_node(a)
        self.add_node(b)
        data = self._succ[a].get(b)
        if data is None:
            data = self._succ[a][b] = self._pred[b][a] = {}
        data.update(attrs)

    def has_edge(self, a: str, b: str) -> bool:
        return b in self._succ.get(a, {})

    def edges(self, data: bool = False) -> list[Any]:
        if data:
            return [(a, b, d) for a, out in self._succ.items() for b, d in out.items()]
        return [(a, b) for a, out in self._succ.items() for b in out]

    def predecessors(self, node: str) -> Iterator[str]:
        return iter(self._pred[node])

    def successors(self, node: str) -> Iterator[str]:
        return iter(self._succ[node])

    def remove_nodes_from(self, nodes: Iterable[str]) -> None:
        for node in list(nodes):
            if node not in self.nodes:
                continue
            for b in self._succ.pop(node):
                del self._pred[b][node]
            for a in self._pred.pop(node):
                del self._succ[a][node]
            del self.nodes[node]

    def ancestors(self, node: str) -> set[str]:
        """Every node with a path to ``node`` (``networkx.ancestors``): one breadth-first pass."""
        seen: set[str] = set()
        pending = [node]
        while pending:
            for a in self._pred[pending.pop()]:
                if a not in seen:
                    seen.add(a)
                    pending.append(a)
        seen.discard(node)
        return seen

    def topological_order(self) -> list[str] | None:
        """Every node after its predecessors, the smallest ready node first, or None when
        there is a cycle: ``networkx.lexicographical_topological_sort``, in O((V + E) log V).
        """
        indegree = {node: len(pred) for node, pred in self._pred.items()}
        ready = [node for node, degree in indegree.items() if degree == 0]
        heapq.heapify(ready)
        order: list[str] = []
        while ready:
            node = heapq.heappop(ready)
            order.append(node)
            for child in self._succ[node]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    heapq.heappush(ready, child)
        return order if len(order) == len(self.nodes) else None

    def is_acyclic(self) -> bool:
        """No cycle, a self-loop included (``networkx.is_directed_acyclic_graph``): Kahn's
        peeling, O(V + E). Which cycle, when there is one, is ``networkx.find_cycle``'s job."""
        indegree = {node: len(pred) for node, pred in self._pred.items()}
        ready = [node for node, degree in indegree.items() if degree == 0]
        peeled = 0
        while ready:
            node = ready.pop()
            peeled += 1
            for child in self._succ[node]:
                indegree[child] -= 1
                if indegree[child] == 0:
                    ready.append(child)
        return peeled == len(self.nodes)

    def shortest_path(self, source: str, target: str) -> list[str] | None:
        """A shortest path from ``source`` to ``target``, or None when there is none (or
        either is not in the graph): the very path ``networkx.shortest_path`` returns, by
        the same bidirectional breadth-first search, so a finding names the same nodes."""
        if source not in self.nodes or target not in self.nodes:
            return None
        pred: dict[str, str | None] = {source: None}
        succ: dict[str, str | None] = {target: None}
        meet: str | None = source if source == target else None
        forward, reverse = [source], [target]
        while meet is None and forward and reverse:
            if len(forward) <= len(reverse):
                level, forward = forward, []
                for v in level:
                    for w in self._succ[v]:
                        if w not in pred:
                            forward.append(w)
                            pred[w] = v
                        if w in succ:
                            meet = w
                            break
                    if meet is not None:
                        break
            else:
                level, reverse = reverse, []
                for v in level:
                    for w in self._pred[v]:
                        if w not in succ:
                            succ[w] = v
                            reverse.append(w)
                        if w in pred:
                            meet = w
                            break
                    if meet is not None:
                        break
        if meet is None:
            return None
        path: list[str] = []
        node: str | None = meet
        while node is not None:
            path.append(node)
            node = pred[node]
        path.reverse()
        node = succ[path[-1]]
        while node is not None:
            path.append(node)
            node = succ[node]
        return path

    def to_networkx(self) -> nx.DiGraph:
        import networkx as nx

        graph = nx.DiGraph()
        graph.add_nodes_from(self.nodes.items())
        graph.add_edges_from(self.edges(data=True))
        return graph


def _graph() -> LineageGraph:
    return LineageGraph()


def _add_file(graph: LineageGraph, row: IoRow) -> str:
    node = file_node(row.digest)
    if node not in graph:
        graph.add_node(node, kind="file", digest=row.digest, paths={}, raw=None)
    graph.nodes[node]["paths"].setdefault(row.path, row.zone)
    return node


def _add_io(graph: LineageGraph, row: IoRow) -> str:
    node = _add_file(graph, row)
    if row.direction == "in":
        graph.add_edge(node, run_node(row.run_id), relation="used", role=row.role, path=row.path)
    else:
        graph.add_edge(run_node(row.run_id), node, relation="generated", role=row.role,
                       path=row.path)
    return node


def _annotate(graph: LineageGraph, index: LineageStore, run_ids: Iterable[str],
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


class ClosureView:
    """The rows of a closure's runs, fetched in a few queries and answered from memory.

    It answers the index's read methods the walks use (``files``, ``producers``,
    ``consumers``, ``runs_by_id``, ``raw_by_digest``, ``promotions_by_digest``,
    ``redactions``) exactly as the index would, in the same order, for the runs and
    digests it holds, and asks the index for anything else. ``runs`` must come from
    ``LineageStore.closure_runs`` with the same ``seeds`` and direction: that is what
    makes every producer of an input (upstream), or every consumer of an output
    (downstream), one of its runs.
    """

    def __init__(self, index: LineageStore, runs: Iterable[str], seeds: Iterable[str] = (),
                 *, upstream: bool = True) -> None:
        self.index = index
        self.run_ids = set(runs)
        ordered = sorted(self.run_ids)
        self._runs = index.runs_by_id(ordered)
        self._io: dict[str, list[IoRow]] = defaultdict(list)
        by_digest: dict[tuple[str, str], list[IoRow]] = defaultdict(list)
        digests = set(seeds)
        for row in index.files(ordered):
            self._io[row.run_id].append(row)
            by_digest[(row.direction, row.digest)].append(row)
            digests.add(row.digest)
        self._by_digest = by_digest
        # the digests whose producers (upstream) or consumers (downstream) are all here
        near = "in" if upstream else "out"
        self._complete = set(seeds) | {d for (direction, d) in by_digest if direction == near}
        self._complete_side = "out" if upstream else "in"
        self._digests = digests
        self._raw: dict[str, list[RawRow]] = defaultdict(list)
        for raw_row in index.raw_by_digest(sorted(digests)):
            self._raw[raw_row.digest].append(raw_row)
        self._promotions: dict[str, list[PromotionRow]] = defaultdict(list)
        for promoted in index.promotions_by_digest(sorted(digests)):
            self._promotions[promoted.digest].append(promoted)
        self._redactions: dict[str, list[RedactionRow]] = defaultdict(list)
        for redaction in index.redactions(ordered):
            self._redactions[redaction.run_id].append(redaction)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.index, name)

    def files(self, run_ids: Sequence[str], direction: str | None = None) -> list[IoRow]:
        wanted = set(run_ids)
        if not wanted <= self.run_ids:
            return self.index.files(run_ids, direction)
        return [row for run_id in sorted(wanted) for row in self._io[run_id]
                if direction is None or row.direction == direction]

    def _linked(self, digests: Sequence[str], side: str) -> list[IoRow] | None:
        wanted = set(digests)
        if side != self._complete_side or not wanted <= self._complete:
            return None
        return [row for digest in sorted(wanted)
                for row in sorted(self._by_digest.get((side, digest), ()),
                                  key=lambda r: (r.run_id, r.path))]

    def producers(self, digests: Sequence[str]) -> list[IoRow]:
        rows = self._linked(digests, "out")
        return self.index.producers(digests) if rows is None else rows

    def consumers(self, digests: Sequence[str]) -> list[IoRow]:
        rows = self._linked(digests, "in")
        return self.index.consumers(digests) if rows is None else rows

    def runs_by_id(self, run_ids: Sequence[str]) -> dict[str, RunRow]:
        wanted = set(run_ids)
        if not wanted <= self.run_ids:
            return self.index.runs_by_id(run_ids)
        return {r: self._runs[r] for r in sorted(wanted) if r in self._runs}

    def raw_by_digest(self, digests: Sequence[str]) -> list[RawRow]:
        wanted = set(digests)
        if not wanted <= self._digests:
            return self.index.raw_by_digest(digests)
        return [row for digest in sorted(wanted)
                for row in sorted(self._raw.get(digest, ()), key=lambda r: r.path)]

    def promotions_by_digest(self, digests: Sequence[str]) -> list[PromotionRow]:
        wanted = set(digests)
        if not wanted <= self._digests:
            return self.index.promotions_by_digest(digests)
        return [row for digest in sorted(wanted)
                for row in sorted(self._promotions.get(digest, ()),
                                  key=lambda r: (r.family, r.version, r.path))]

    def redactions(self, run_ids: Sequence[str]) -> list[RedactionRow]:
        wanted = set(run_ids)
        if not wanted <= self.run_ids:
            return self.index.redactions(run_ids)
        return [row for run_id in sorted(wanted) for row in self._redactions[run_id]]


def closure_view(index: LineageStore, *, runs: Iterable[str] = (),
                 digests: Iterable[str] = (), upstream: bool = True,
                 ) -> ClosureView | LineageStore:
    """A :class:`ClosureView` of what is linked to these runs and files, or the index
    itself when the closure is too large to hold (the walks then query level by level)."""
    runs, digests = sorted(set(runs)), sorted(set(digests))
    found = index.closure_runs(runs, digests, upstream=upstream)
    if found is None:
        return index
    return ClosureView(index, found, digests, upstream=upstream)


def ancestry(index: LineageStore, *, runs: Iterable[str] = (),
             digests: Iterable[str] = (), light: bool = False) -> Any:
    """Everything upstream of the given runs and files, down to raw (and the runs' outputs).

    A ``networkx.DiGraph``, or with ``light`` the :class:`LineageGraph` (no networkx import).
    """
    runs, digests = set(runs), set(digests)
    view: Any = closure_view(index, runs=runs, digests=digests, upstream=True)
    graph = _graph()
    for row in view.files(sorted(runs), "out"):
        _add_io(graph, row)
    graph = _walk(view, graph, runs, digests, upstream=True)
    return graph if light else graph.to_networkx()


def descendants(index: LineageStore, *, runs: Iterable[str] = (),
                digests: Iterable[str] = (), light: bool = False) -> Any:
    """Everything downstream: the runs that used these files, their outputs, and on.

    A ``networkx.DiGraph``, or with ``light`` the :class:`LineageGraph` (no networkx import).
    """
    runs, digests = set(runs), set(digests)
    view: Any = closure_view(index, runs=runs, digests=digests, upstream=False)
    graph = _walk(view, _graph(), runs, digests, upstream=False)
    return graph if light else graph.to_networkx()


def _walk(index: LineageStore, graph: LineageGraph, pending_runs: set[str],
          pending_files: set[str], *, upstream: bool) -> LineageGraph:
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


def lake_graph(index: LineageStore, family: str | None = None) -> nx.DiGraph:
    """Every run (of a family) with its inputs and outputs."""
    graph = _graph()
    run_ids = [r.run_id for r in index.runs(family)]
    digests: set[str] = set()
    for row in index.files(run_ids):
        _add_io(graph, row)
        digests.add(row.digest)
    _annotate(graph, index, run_ids, digests)
    return graph.to_networkx()

