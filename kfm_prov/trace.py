"""``trace``: one artifact's lineage, back to its raw sources or down to every product.

An auditor names an artifact the way they have it: a path in any zone, a digest, a run
id or a STAC item. ``trace`` resolves it to nodes of the lineage graph, loads only the part
of the index the question needs (``lineage.ancestry`` / ``descendants``: a few batched
queries per level, never every receipt), annotates the nodes from the index and says
where the lineage is broken. It reads only; ``verify=True`` re-hashes every file of the
closure in one parallel batch.

The result is a typed :class:`Trace` whose ``to_dict`` is the JSON lineage documented in
``docs/lineage-json.md`` (``kfm.lineage.v1``); the renderers below turn it into a tree,
Graphviz DOT, a Mermaid flowchart or a PROV document. Every rendering is deterministic.
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any, NotRequired, TypedDict, cast

from kfm_prov.config import LakeConfig, zone_rank
from kfm_prov.core.paths import check_relative, is_under, to_relative
from kfm_prov.errors import InputError, NotFoundError
from kfm_prov.store.digests import hash_files, hex_of, normalize_digest
from kfm_prov.store.index import PromotionRow
from kfm_prov.store.lineage import LineageGraph, file_node, run_node
from kfm_prov.store.protocol import LineageStore
from kfm_prov.store.receipts import validation_label

if TYPE_CHECKING:
    from prov.model import ProvDocument
    from rich.tree import Tree

SCHEMA_VERSION = "kfm.lineage.v1"
FORMATS = ("tree", "json", "prov-json", "dot", "mermaid")
DIRECTIONS = ("up", "down")
_DIGEST = re.compile(r"^(sha256:)?[0-9a-fA-F]{64}$")
_ITEM_ID = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_RUN_FIELDS = ("run_id", "family", "pipeline_id", "git_commit", "spec_hash", "started_at",
               "ended_at", "status", "overall_status", "run_dir")


def item_node(item_id: str) -> str:
    return f"item:{item_id}"


def short_digest(digest: str) -> str:
    """``sha256:`` and the first 12 hex digits: enough to tell files apart on screen."""
    return f"sha256:{hex_of(digest)[:12]}"


# --- the model ---------------------------------------------------------------------------------

class FileCopy(TypedDict, total=False):
    """One path the bytes of a file node are known at."""

    path: str
    zone: str
    exists: bool
    verified: str  # ok | modified | missing (with --verify)


class TraceNode(TypedDict, total=False):
    """A node of ``kfm.lineage.v1`` (docs/lineage-json.md): a run, a file or a STAC item.

    ``id`` and ``kind`` always; the other keys by kind (run: ``run_id`` … ``exists``;
    file: ``digest``, ``copies``, ``raw``, ``promotions``; item: ``item_id`` …).
    """

    id: str
    kind: str
    run_id: str
    family: str
    pipeline_id: str
    git_commit: str
    spec_hash: str
    started_at: str
    ended_at: str | None
    status: str
    validation: str
    run_dir: str
    exists: bool
    digest: str
    copies: list[FileCopy]
    raw: list[dict[str, Any]]
    promotions: list[dict[str, Any]]
    item_id: str
    version: str
    path: str | None
    bundle: str | None
    certificate: str | None
    promoted_at: str


#: A cause → effect edge; ``role`` and ``path`` when the run recorded them.
TraceEdge = TypedDict("TraceEdge", {"from": str, "to": str, "relation": str,
                                    "role": NotRequired[str], "path": NotRequired[str]})

@dataclass(frozen=True)
class Target:
    """What the user named, and the lineage nodes the trace starts from."""

    query: str
    kind: str  # path | digest | run | item | version | family
    nodes: tuple[str, ...]
    path: str | None = None  # root-relative, when a path was given
    family: str | None = None
    version: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in self.__dict__.items()
                if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Target:
        return cls(query=data["query"], kind=data["kind"], nodes=tuple(data["nodes"]),
                   path=data.get("path"), family=data.get("family"),
                   version=data.get("version"))


@dataclass(frozen=True)
class Issue:
    """Where the lineage is broken (or a file no longer matches): one node, one reason."""

    code: str  # stable: orphan-input, raw-not-recorded, upstream-failed, file-missing, ...
    node: str
    message: str
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Issue:
        return cls(data["code"], data["node"], data["message"], data.get("path"))


@dataclass
class Trace:
    """The lineage of one artifact: nodes, cause → effect edges, and what is broken."""

    target: Target
    direction: str  # up (to raw sources) | down (to every derived product)
    nodes: dict[str, TraceNode]  # id → the node as documented
    edges: list[TraceEdge]
    issues: list[Issue] = field(default_factory=list)
    verified: bool = False  # files were re-hashed
    _adjacency: tuple[dict[str, list[TraceEdge]], dict[str, list[TraceEdge]]] | None \
        = field(default=None, init=False, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return not self.issues

    def issues_of(self, node: str) -> list[Issue]:
        return [i for i in self.issues if i.node == node]

    def causes(self, node: str) -> list[TraceEdge]:
        """Edges into ``node``, in edge order."""
        return self._adjacent()[0].get(node, [])

    def effects(self, node: str) -> list[TraceEdge]:
        """Edges out of ``node``, in edge order."""
        return self._adjacent()[1].get(node, [])

    def _adjacent(self) -> tuple[dict[str, list[TraceEdge]],
                                 dict[str, list[TraceEdge]]]:
        if self._adjacency is None:
            into: dict[str, list[TraceEdge]] = defaultdict(list)
            out: dict[str, list[TraceEdge]] = defaultdict(list)
            for edge in self.edges:
                into[edge["to"]].append(edge)
                out[edge["from"]].append(edge)
            self._adjacency = (dict(into), dict(out))
        return self._adjacency

    def summary(self) -> dict[str, Any]:
        files = [n for n in self.nodes.values() if n["kind"] == "file"]
        out: dict[str, Any] = {
            "runs": sum(1 for n in self.nodes.values() if n["kind"] == "run"),
            "files": len(files),
            "items": sorted(n["item_id"] for n in self.nodes.values() if n["kind"] == "item"),
        }
        if self.direction == "up":
            out["raw_sources"] = sorted(
                {(r["path"], n["digest"], r.get("license"), r.get("attribution"))
                 for n in files if not self.causes(n["id"]) for r in n["raw"]})
            out["raw_sources"] = [dict(zip(("path", "digest", "license", "attribution"), s,
                                           strict=True)) for s in out["raw_sources"]]
        else:
            start = set(self.target.nodes)
            out["derived"] = sorted(
                ({"path": c["path"], "zone": c["zone"], "digest": n["digest"]}
                 for n in files if n["id"] not in start for c in n["copies"]
                 if c["zone"] in ("work", "processed")),
                key=lambda d: (d["zone"] != "processed", d["path"]))
        return out

    def to_dict(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "artifact": self.target.to_dict(),
            "direction": self.direction,
            "ok": self.ok,
            "verified": self.verified,
            "summary": self.summary(),
            "nodes": [self.nodes[k] for k in sorted(self.nodes)],
            "edges": self.edges,
            "issues": [i.to_dict() for i in self.issues],
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Trace:
        if data.get("schema_version") != SCHEMA_VERSION:
            raise InputError(f"not a {SCHEMA_VERSION} lineage document",
                             field="schema_version")
        return cls(target=Target.from_dict(data["artifact"]), direction=data["direction"],
                   nodes={n["id"]: cast(TraceNode, dict(n)) for n in data["nodes"]},
                   edges=[cast(TraceEdge, dict(e)) for e in data["edges"]],
                   issues=[Issue.from_dict(i) for i in data["issues"]],
                   verified=bool(data.get("verified")))


# --- resolving what the user typed -------------------------------------------------------------

def resolve_artifact(config: LakeConfig, index: LineageStore, text: str, *,
                     base: Path | None = None) -> Target:
    """A path (any zone), a ``sha256:`` or 64-hex digest, a STAC item, or a run id/prefix.

    Tried in that order; an unknown artifact raises ``NotFoundError`` (exit 2).
    """
    query = text.strip()
    if not query:
        raise InputError("the artifact is empty", field="ARTIFACT")
    for rel in _path_candidates(config, query, base):
        target = _path_target(config, index, query, rel)
        if target is not None:
            return target
    if os.path.exists(Path(base or Path.cwd()) / query):  # False for NUL, ENAMETOOLONG
        try:
            to_relative(config.root, query, base=base)
        except InputError:
            raise InputError("this path is outside the lake root", file=query,
                             hint=f"the lake is {config.root}") from None
    if _DIGEST.match(query):
        digest = normalize_digest(query)
        if _digest_known(index, digest):
            return Target(query, "digest", (file_node(digest),))
        raise NotFoundError(f"no file with digest {short_digest(digest)}… is recorded in"
                            " the lake", hint="`kfm-prov raw add` records raw captures")
    if _ITEM_ID.match(query.lower()):
        found = _item_target(index, query, query.lower())
        if found is not None:
            return found
    try:
        row = index.resolve_run(query)
    except NotFoundError:
        raise NotFoundError(f"unknown artifact {query!r}: not a path in the lake, a recorded"
                            " digest, a STAC item or a run id",
                            hint="see `kfm-prov runs`; paths are relative to where you"
                                 " stand") from None
    return Target(query, "run", (run_node(row.run_id),))


def _path_candidates(config: LakeConfig, text: str, base: Path | None) -> list[str]:
    """Root-relative readings of ``text``: from where the user stands, then from the root.

    An existing file comes first; a path that no longer exists is still a candidate
    (its recorded lineage can be traced, and shown broken).
    """
    found: list[str] = []
    with contextlib.suppress(InputError):
        found.append(to_relative(config.root, text, base=base))
    if not os.path.isabs(text):
        with contextlib.suppress(InputError):
            found.append(check_relative(PurePosixPath(text).as_posix()))
    unique = list(dict.fromkeys(r.rstrip("/") for r in found))
    return sorted(unique, key=lambda rel: not (config.root / rel).exists())


def _path_target(config: LakeConfig, index: LineageStore, query: str,
                 rel: str) -> Target | None:
    absolute = config.root / rel
    exists = absolute.exists()
    if is_under(rel, config.rel("processed")):
        found = _processed_target(config, index, query, rel)
    elif is_under(rel, config.rel("stac")):
        found = _stac_target(config, index, query, rel)
    elif is_under(rel, config.rel("prov")):
        found = _version_by(index, query, rel, lambda p: rel in (p.bundle, p.certificate))
    elif is_under(rel, config.rel("runs")):
        found = _run_path_target(config, index, query, rel)
    elif is_under(rel, config.rel("raw")):
        rows = index.raw_by_path([rel])
        found = Target(query, "path", (file_node(rows[0].digest),), path=rel) if rows else None
    else:
        found = None
    if found is None and exists and absolute.is_file():
        digest = hash_files([absolute])[0]
        if _digest_known(index, digest):
            found = Target(query, "path", (file_node(digest),), path=rel)
        elif is_under(rel, config.rel("raw")):
            raise NotFoundError("this raw file is not recorded", file=rel,
                                hint=f"kfm-prov raw add {rel}")
        else:
            raise NotFoundError("no recorded run used or produced this file, and it is no"
                                " recorded raw file", file=rel)
    if found is None and exists:
        raise NotFoundError("nothing is recorded at this path", file=rel)
    return found


def _processed_target(config: LakeConfig, index: LineageStore, query: str,
                      rel: str) -> Target | None:
    parts = PurePosixPath(rel).relative_to(config.rel("processed")).parts
    if not parts:
        return None
    rows = index.promotions(parts[0])
    if len(parts) == 1:
        return _family_target(query, parts[0], rows, path=rel)
    if len(parts) == 2 or parts[2:] == ("checksums.sha256",):
        return _version_by(index, query, rel,
                           lambda p: p.family == parts[0] and p.version == parts[1], rows=rows)
    match = [p for p in rows if p.path == rel]
    if match:
        return Target(query, "path", (file_node(match[0].digest),), path=rel,
                      family=match[0].family, version=match[0].version)
    return None


def _stac_target(config: LakeConfig, index: LineageStore, query: str,
                 rel: str) -> Target | None:
    parts = PurePosixPath(rel).relative_to(config.rel("stac")).parts
    if len(parts) == 2 and parts[1] == "collection.json":
        return _family_target(query, parts[0], index.promotions(parts[0]), path=rel)
    stem = PurePosixPath(rel).stem
    return _version_by(index, query, rel, lambda p: p.item == rel or (
        len(parts) >= 2 and p.family == parts[0] and _item_id(p) == stem))


def _run_path_target(config: LakeConfig, index: LineageStore, query: str,
                     rel: str) -> Target | None:
    parts = PurePosixPath(rel).relative_to(config.rel("runs")).parts
    if len(parts) < 2:
        return None
    run = index.run(parts[1])
    if run is None:
        return None
    files = [f for f in index.files([run.run_id]) if f.path == rel]
    if files:
        return Target(query, "path", (file_node(files[0].digest),), path=rel)
    if len(parts) == 2 or parts[2] != "artifacts":
        return Target(query, "run", (run_node(run.run_id),), path=rel)
    return None


def _item_id(row: PromotionRow) -> str:
    from kfm_prov.store.published import item_id

    return item_id(row.family, row.version)


def _version_by(index: LineageStore, query: str, rel: str | None, match: Any, *,
                rows: Sequence[PromotionRow] | None = None) -> Target | None:
    chosen = [p for p in (index.promotions() if rows is None else rows) if match(p)]
    if not chosen:
        return None
    family, version = chosen[0].family, chosen[0].version
    return Target(query, "version", (item_node(_item_id(chosen[0])),), path=rel,
                  family=family, version=version)


def _family_target(query: str, family: str, rows: Sequence[PromotionRow],
                   path: str) -> Target | None:
    if not rows:
        return None
    items = sorted({item_node(_item_id(p)) for p in rows})
    return Target(query, "family", tuple(items), path=path, family=family)


def _item_target(index: LineageStore, query: str, wanted: str) -> Target | None:
    found = _version_by(index, query, None, lambda p: _item_id(p) == wanted)
    if found is None:
        return None
    return Target(query, "item", found.nodes, family=found.family, version=found.version)


def _digest_known(index: LineageStore, digest: str) -> bool:
    return bool(index.producers([digest]) or index.consumers([digest])
                or index.raw_by_digest([digest]) or index.promotions_by_digest([digest]))


# --- building the trace ------------------------------------------------------------------------

def trace(config: LakeConfig, artifact: str, *, down: bool = False, verify: bool = False,
          base: Path | None = None) -> Trace:
    """The lineage of ``artifact``: up to its raw sources, or ``down`` to every product.

    Reads the index (and stats the closure's files); ``verify`` also re-hashes them.
    Writes nothing. Raises ``NotFoundError`` for an unknown artifact.
    """
    from kfm_prov.store.lineage import ancestry, descendants
    from kfm_prov.store.rebuild import index_for

    with index_for(config) as index:
        target = resolve_artifact(config, index, artifact, base=base)
        start_runs = [n[4:] for n in target.nodes if n.startswith("run:")]
        start_files = [n[5:] for n in target.nodes if n.startswith("file:")]
        items = [n for n in target.nodes if n.startswith("item:")]
        if items:
            start_files += _item_digests(index, target)
        walk = descendants if down else ancestry
        graph = walk(index, runs=start_runs, digests=start_files, light=True)
        if not down:
            _keep_certified_derivation(config, index, graph, target)
        result = _Collector(config, index, graph, target, "down" if down else "up").build()
    if verify:
        _verify_files(config, result)
    result.issues.sort(key=lambda i: (i.node, i.code, i.path or "", i.message))
    return result


def _keep_certified_derivation(config: LakeConfig, index: LineageStore, graph: LineageGraph,
                               target: Target) -> None:
    """Up from a published version, only the runs its certificate proved.

    The same bytes can be made again later by other runs; they are not where the
    published version came from. Runs outside the certificates' closures are dropped, and
    with them whatever only they led to. A certificate that cannot be read leaves the
    graph as it is (``trace --verify`` and ``verify`` report it).
    """
    from kfm_prov.store.certificate import read_certificate

    items = {n for n in target.nodes if n.startswith("item:")}
    if items:
        rows = [p for p in index.promotions(target.family) if item_node(_item_id(p)) in items]
    elif target.path and config.zone_of(target.path) == "processed":
        digests = sorted(n[5:] for n in target.nodes if n.startswith("file:"))
        rows = [p for p in index.promotions_by_digest(digests) if p.path == target.path]
    else:
        return  # a run, a work file or bare bytes: every derivation the lake knows
    if not rows:
        return
    allowed: set[str] = set()
    pending = sorted({p.certificate for p in rows if p.certificate})
    seen: set[str] = set()
    while pending:  # a certificate's processed inputs are proven by their own certificates
        rel = pending.pop()
        seen.add(rel)
        try:
            cert = read_certificate(config, rel)
        except InputError:
            return
        allowed |= {run_node(r.run_id) for r in cert.runs}
        inputs = [e.digest for e in cert.entities if e.kind == "processed"]
        # a product carried forward is proven by the certificate of its first promotion
        carried = {str(p["carried_from"].get("certificate")) for _, p in cert.carried()
                   if isinstance(p["carried_from"], dict)}
        pending += sorted(({p.certificate for p in index.promotions_by_digest(inputs)
                            if p.certificate} | carried) - seen - set(pending))
    graph.remove_nodes_from([n for n in list(graph) if n.startswith("run:")
                             and n not in allowed])
    roots = {file_node(p.digest) for p in rows} | set(target.nodes)
    keep = roots | {a for n in roots if n in graph for a in graph.ancestors(n)}
    graph.remove_nodes_from([n for n in list(graph) if n not in keep])


def _item_digests(index: LineageStore, target: Target) -> list[str]:
    wanted = set(target.nodes)
    rows = index.promotions(target.family)
    return sorted({p.digest for p in rows if item_node(_item_id(p)) in wanted})


class _Collector:
    """Turns the networkx walk into documented nodes, edges and issues."""

    def __init__(self, config: LakeConfig, index: LineageStore, graph: LineageGraph,
                 target: Target, direction: str) -> None:
        self.config = config
        self.root = str(config.root)  # os.path, not pathlib: two stats per run on long chains
        self.index = index
        self.graph = graph
        self.target = target
        self.direction = direction
        self.nodes: dict[str, TraceNode] = {}
        self.edges: list[TraceEdge] = []
        self.issues: list[Issue] = []

    def build(self) -> Trace:
        graph = self.graph
        run_ids = sorted(n[4:] for n in graph if n.startswith("run:"))
        digests = sorted(graph.nodes[n]["digest"] for n in graph if n.startswith("file:"))
        runs = self.index.runs_by_id(run_ids)
        raws: dict[str, list[Any]] = defaultdict(list)
        for raw in self.index.raw_by_digest(digests):
            raws[raw.digest].append(raw)
        promotions: dict[str, list[PromotionRow]] = defaultdict(list)
        for promoted in self.index.promotions_by_digest(digests):
            promotions[promoted.digest].append(promoted)
        for run_id in run_ids:
            self._run(run_id, runs.get(run_id))
        for digest in digests:
            self._file(digest, sorted(raws[digest], key=lambda r: r.path),
                       sorted(promotions[digest], key=lambda p: (p.promoted_at, p.path)))
        for a, b, data in graph.edges(data=True):
            if data["relation"] == "generated" and graph.has_edge(b, a):
                continue  # a run that copied its input: the bytes came from the input
            edge = TraceEdge({"from": a, "to": b, "relation": data["relation"]})
            for key in ("role", "path"):
                if data.get(key) is not None:
                    edge[key] = data[key]  # type: ignore[literal-required]
            self.edges.append(edge)
        self.edges.sort(key=lambda e: (e["from"], e["to"], e["relation"], e.get("path", "")))
        if self.direction == "up":
            self._check_sources()
        for node in self.target.nodes:
            if node not in self.nodes:  # an item whose products left the index
                raise NotFoundError(f"{self.target.query!r} is recorded but none of its files"
                                    " are in the index", hint="kfm-prov index rebuild")
        return Trace(self.target, self.direction, self.nodes, self.edges, self.issues)

    def _run(self, run_id: str, row: Any) -> None:
        node = run_node(run_id)
        if row is None:
            self.nodes[node] = {"id": node, "kind": "run", "run_id": run_id}
            self.issues.append(Issue("run-not-indexed", node, f"run {run_id} is named by the"
                                     " index but has no record in it"))
            return
        data = TraceNode(id=node, kind="run")
        data.update({k: getattr(row, k) for k in _RUN_FIELDS  # type: ignore[typeddict-item]
                     if k != "overall_status"})
        data["validation"] = row.overall_status
        data["exists"] = os.path.isdir(os.path.join(self.root, row.run_dir))
        self.nodes[node] = data
        if not data["exists"]:
            self.issues.append(Issue("run-missing", node, f"the directory of run {run_id} is"
                                     " gone", path=row.run_dir))
        if node in self.target.nodes and row.status != "success":
            self.issues.append(Issue("run-failed", node, f"run {run_id} ended {row.status}",
                                     path=f"{row.run_dir}/run_record.json"))

    def _file(self, digest: str, raws: list[Any], promotions: list[PromotionRow]) -> None:
        node = file_node(digest)
        copies: dict[str, str] = dict(self.graph.nodes[node].get("paths", {}))
        for raw in raws:
            copies.setdefault(raw.path, "raw")
        for promoted in promotions:
            copies.setdefault(promoted.path, "processed")
        listed: list[FileCopy] = []
        for path, zone in sorted(copies.items(), key=lambda kv: (_newest_zone_first(kv[1]), kv[0])):
            exists = os.path.isfile(os.path.join(self.root, path))
            listed.append(FileCopy(path=path, zone=zone, exists=exists))
            # Work files are scratch (gc collects them once their runs are recorded): the
            # lineage rests on raw files, receipts and published files, as the gate and
            # `verify` see it. A missing work copy is an issue only when it was asked about.
            if not exists and (zone != "work" or node in self.target.nodes):
                self.issues.append(Issue("file-missing", node, f"{path} is gone", path=path))
        self.nodes[node] = {
            "id": node, "kind": "file", "digest": digest, "copies": listed,
            "raw": [{"path": r.path, "license": r.license, "attribution": r.attribution,
                     "sensitivity": r.sensitivity, "manifest": r.manifest} for r in raws],
            "promotions": [{"family": p.family, "version": p.version, "path": p.path,
                            "item_id": _item_id(p), "run_id": p.run_id} for p in promotions],
        }
        for promoted in promotions:
            self._item(promoted)
            self.edges.append({"from": node, "to": item_node(_item_id(promoted)),
                               "relation": "published", "path": promoted.path})

    def _item(self, row: PromotionRow) -> None:
        node = item_node(_item_id(row))
        if node in self.nodes:
            return
        exists = bool(row.item) and (self.config.root / str(row.item)).is_file()
        self.nodes[node] = {"id": node, "kind": "item", "item_id": _item_id(row),
                            "family": row.family, "version": row.version, "path": row.item,
                            "bundle": row.bundle, "certificate": row.certificate,
                            "run_id": row.run_id, "promoted_at": row.promoted_at,
                            "exists": exists}
        if not exists:
            self.issues.append(Issue("item-missing", node, f"STAC item {_item_id(row)} of"
                                     f" {row.family} {row.version} is gone", path=row.item))

    def _check_sources(self) -> None:
        """Up the graph, every file ends in a recorded raw file or a promoted one, and
        every file with producers has at least one that succeeded."""
        producers: dict[str, list[str]] = defaultdict(list)
        for edge in self.edges:
            if edge["relation"] == "generated":
                producers[edge["to"]].append(edge["from"])
        for node, data in self.nodes.items():
            if data["kind"] != "file":
                continue
            made_by = producers.get(node, [])
            if made_by:
                statuses = {r: self.nodes.get(r, {}).get("status") for r in made_by}
                if "success" not in statuses.values():
                    self.issues.append(Issue(
                        "upstream-failed", node, "no run that produced it succeeded: "
                        + ", ".join(f"{r[4:]} ({s or 'unknown'})"
                                    for r, s in sorted(statuses.items()))))
                continue
            if data["raw"]:
                for raw in data["raw"]:
                    for key in ("license", "attribution"):
                        if not (raw.get(key) or "").strip():
                            self.issues.append(Issue(
                                f"{key}-missing", node, f"raw file {raw['path']} has no"
                                f" {key}", path=raw["manifest"]))
            elif data["promotions"]:
                continue  # a certified processed input, its producer no longer indexed
            elif any(c["zone"] == "raw" for c in data["copies"]):
                raw_path = next(c["path"] for c in data["copies"] if c["zone"] == "raw")
                self.issues.append(Issue("raw-not-recorded", node, f"{raw_path} was used with"
                                         " bytes no raw manifest records", path=raw_path))
            else:
                where = data["copies"][0]["path"] if data["copies"] else None
                self.issues.append(Issue("orphan-input", node, "no recorded run produced it"
                                         " and it is no recorded raw file", path=where))


def _verify_files(config: LakeConfig, result: Trace) -> None:
    """Re-hash every existing copy of every file of the closure, in one parallel batch."""
    todo: list[tuple[str, FileCopy]] = []
    for node in sorted(result.nodes):
        data = result.nodes[node]
        if data["kind"] != "file":
            continue
        for copy in data["copies"]:
            if copy["exists"]:
                todo.append((node, copy))
            else:
                copy["verified"] = "missing"
    actual = hash_files([config.root / copy["path"] for _, copy in todo])
    for (node, copy), digest in zip(todo, actual, strict=True):
        expected = result.nodes[node]["digest"]
        copy["verified"] = "ok" if digest == expected else "modified"
        if digest != expected:
            result.issues.append(Issue("file-modified", node, f"{copy['path']} changed: now"
                                       f" {short_digest(digest)}…, recorded"
                                       f" {short_digest(expected)}…", path=copy["path"]))
    result.verified = True


# --- rendering: labels shared by every format ---------------------------------------------------

def display_path(result: Trace, node: str) -> str | None:
    """The path a file is best known by: the one asked about, else published, raw, work."""
    data = result.nodes[node]
    if result.target.path and node in result.target.nodes:
        return result.target.path
    copies = data.get("copies") or []
    if data.get("promotions"):
        return str(data["promotions"][0]["path"])
    if data.get("raw"):
        return str(data["raw"][0]["path"])
    return str(copies[0]["path"]) if copies else None


def _zone_of(data: TraceNode, path: str | None) -> str:
    for copy in data.get("copies", []):
        if copy["path"] == path:
            return str(copy["zone"])
    return "?"


#: How many other paths of the same bytes a graph label names before it only counts them.
SHOWN_PATHS = 3
RANKDIRS = ("TB", "LR", "BT", "RL")


def node_lines(result: Trace, node: str, path: str | None = None, *,
               all_paths: bool = False) -> list[str]:
    """A node's label as lines (first line: what it is; then details).

    In a graph (``path`` None) each content state is one node: its other paths are named,
    up to ``SHOWN_PATHS`` of them unless ``all_paths``, then counted.
    """
    data = result.nodes[node]
    kind = data["kind"]
    if kind == "run":
        if "status" not in data:
            return [f"run {data['run_id']}", "not in the index"]
        return [f"run {data['run_id']}",
                f"{data['pipeline_id']} @ {data['git_commit'][:12]}",
                f"{data['started_at']}",
                f"{data['status']} · validation"
                f" {validation_label(data['status'], data['validation'])}"]
    if kind == "item":
        return [f"STAC item {data['item_id']}", f"{data['family']} {data['version']}"]
    shown = path or display_path(result, node)
    lines = [str(shown), f"{short_digest(data['digest'])} · {_zone_of(data, shown)}"]
    if data["raw"]:
        raw = next((r for r in data["raw"] if r["path"] == shown), data["raw"][0])
        lines.append(f"license {raw.get('license') or '?'} · {raw.get('attribution') or '?'}")
    for promoted in data["promotions"]:
        lines.append(f"published {promoted['family']} {promoted['version']}")
    others = [c["path"] for c in data["copies"] if c["path"] != shown]
    if path is None and others:  # a graph shows each node once: name its other copies
        named = others if all_paths else others[:SHOWN_PATHS]
        lines += [f"also {p}" for p in named]
        if len(others) > len(named):
            rest = len(others) - len(named)
            lines.append(f"+{rest} more path{'s' if rest > 1 else ''} (--all-paths)")
    return lines


# --- the tree ---------------------------------------------------------------------------------

@dataclass
class Branch:
    """A node of the tree as shown: its label as (text, rich style) parts, and children."""

    parts: list[tuple[str, str]]
    children: list[Branch] = field(default_factory=list)


def branches(result: Trace) -> Branch:
    """The DAG shown from the artifact, shared subtrees once ("see above")."""
    up = result.direction == "up"
    roots = list(result.target.nodes)
    if len(roots) == 1:
        top: Branch | None = None
    else:
        what = " ".join(x for x in (result.target.kind, result.target.family,
                                    result.target.version) if x)
        top = Branch([(f"{what} ({result.target.query})", "bold")])
    expanded: set[str] = set()
    # Depth first, in display order, so "(see above)" always points up the page.
    stack: list[tuple[Branch | None, str, str | None]] = [(top, r, None)
                                                          for r in reversed(roots)]
    while stack:
        parent, node, path = stack.pop()
        edges = result.causes(node) if up else result.effects(node)
        repeat = node in expanded
        branch = Branch(_label_parts(result, node, path, seen=repeat and bool(edges)))
        if parent is not None:
            parent.children.append(branch)
        if top is None:
            top = branch
        if repeat:
            continue
        expanded.add(node)
        for edge in reversed(edges):
            child = edge["from"] if up else edge["to"]
            stack.append((branch, child, edge.get("path")))
    assert top is not None
    return top


def tree(result: Trace) -> Tree:
    """A rich Tree of :func:`branches`, coloured, for a terminal."""
    return _rich_tree(branches(result))


def _rich_tree(top: Branch) -> Tree:
    from rich.text import Text
    from rich.tree import Tree

    def label(branch: Branch) -> Text:
        (first, style), *rest = branch.parts
        text = Text(first, style=style)
        for part, part_style in rest:
            text.append(part, style=part_style)
        return text

    root = Tree(label(top))
    pending = [(root, top)]  # a chain of 1,000 runs is 2,000 levels deep: no recursion
    while pending:
        into, branch = pending.pop()
        pending += [(into.add(label(child)), child) for child in branch.children]
    return root


def _label_parts(result: Trace, node: str, path: str | None, *,
                 seen: bool) -> list[tuple[str, str]]:
    data = result.nodes[node]
    lines = node_lines(result, node, path)
    style = {"run": "bold cyan", "item": "bold magenta"}.get(data["kind"], "")
    if data["kind"] == "file" and data.get("raw"):
        style = "green"
    parts = [(lines[0], style)]
    if len(lines) > 1:
        parts.append(("  " + "  ·  ".join(lines[1:]), "dim" if not data.get("raw") else ""))
    if seen:
        parts.append(("  (see above)", "dim italic"))
        return parts
    if result.verified and data["kind"] == "file":
        states = {c.get("verified") for c in data["copies"]}
        if states == {"ok"}:
            parts.append(("  ✓ verified", "green"))
    for issue in result.issues_of(node):
        parts.append((f"\n✗ {issue.code}: {issue.message}", "bold red"))
    return parts


def render_tree(result: Trace, *, width: int = 100_000) -> str:
    """The tree as plain text (no colour), as ``kfm-prov trace`` prints it off a terminal:
    one line per node, never wrapped."""
    top = branches(result)
    text = plain_tree(top, width=width)
    if text is not None:
        return text
    import io

    from rich.console import Console

    buffer = io.StringIO()
    Console(file=buffer, width=width, color_system=None, no_color=True,
            highlight=False).print(_rich_tree(top))
    return buffer.getvalue()


_GUIDES = ("    ", "│   ", "├── ", "└── ")  # rich's tree guides: space, continue, fork, end
_SPACE, _CONTINUE, _FORK, _END = range(4)


def plain_tree(top: Branch, *, width: int = 100_000) -> str | None:
    """What rich prints for :func:`_rich_tree` without colour, written without importing
    rich (a fifth of a cold ``trace``), or None when a label needs rich's own handling
    (control characters or tabs, text that could reach ``width``). The walk is rich's
    (``Tree.__rich_console__``), with strings for segments."""
    out: list[str] = []
    levels = [_CONTINUE]
    heads = [""]  # heads[-1]: the guides of levels[1:-1], which stay as they are meanwhile
    stack: list[Iterator[tuple[bool, Branch]]] = [iter([(True, top)])]
    while stack:
        try:
            last, branch = next(stack[-1])
        except StopIteration:
            stack.pop()
            levels.pop()
            heads.pop()
            if levels:
                levels[-1] = _FORK
            continue
        if last:
            levels[-1] = _END
        label = "".join(part for part, _ in branch.parts)
        if not label.replace("\n", "").isprintable():
            return None
        head = heads[-1]
        prefix = head + _GUIDES[levels[-1]] if len(levels) > 1 else ""
        for line in label.split("\n"):
            if len(prefix) + 2 * len(line) >= width:  # 2: the widest a character is
                return None
            out.append(prefix + line + "\n")
            if len(levels) > 1:
                prefix = head + _GUIDES[_SPACE if last else _CONTINUE]
        if branch.children:
            levels[-1] = _SPACE if last else _CONTINUE
            heads.append(head + _GUIDES[levels[-1]] if len(levels) > 1 else "")
            levels.append(_END if len(branch.children) == 1 else _FORK)
            count = len(branch.children)
            stack.append(iter([(k == count - 1, child)
                               for k, child in enumerate(branch.children)]))
    return "".join(out)


# --- DOT and Mermaid ----------------------------------------------------------------------------

def _dot_string(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _check_rankdir(rankdir: str) -> str:
    if rankdir not in RANKDIRS:
        raise InputError(f"unknown direction {rankdir!r}; one of {', '.join(RANKDIRS)}",
                         field="--rankdir")
    return rankdir


def to_dot(result: Trace, *, rankdir: str = "TB", all_paths: bool = False) -> str:
    """Graphviz DOT: runs as boxes, files as ellipses, STAC items as notes; cause → effect,
    top to bottom unless ``rankdir`` says otherwise (LR suits wide screens)."""
    shapes = {"run": 'shape=box, style="rounded,filled", fillcolor="#9FB1FC"',
              "file": 'shape=ellipse, style=filled, fillcolor="#FFFC87"',
              "item": 'shape=note, style=filled, fillcolor="#E8D5FF"'}
    broken = {i.node for i in result.issues}
    lines = ["digraph lineage {", f"  rankdir={_check_rankdir(rankdir)};",
             '  node [fontname="Helvetica"];',
             '  edge [fontname="Helvetica", fontsize=10];']
    for node in sorted(result.nodes):
        data = result.nodes[node]
        label = chr(10).join(node_lines(result, node, all_paths=all_paths))
        attrs = [f"label={_dot_string(label)}",
                 shapes[data["kind"]]]
        if node in broken:
            attrs.append('color="#D00000", penwidth=2')
        if node in result.target.nodes:
            attrs.append("peripheries=2")
        lines.append(f"  {_dot_string(node)} [{', '.join(attrs)}];")
    for edge in result.edges:
        lines.append(f"  {_dot_string(edge['from'])} -> {_dot_string(edge['to'])}"
                     f" [label={_dot_string(edge['relation'])}];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def _mermaid_text(text: str) -> str:
    """Mermaid label text: entity codes for every character its parser reads as syntax."""
    out = " ".join(text.split()).replace("#", "#35;")
    for char, code in (('"', "#quot;"), ("<", "#lt;"), (">", "#gt;"), ("&", "#38;"),
                       ("`", "#96;")):
        out = out.replace(char, code)
    return out


def to_mermaid(result: Trace, *, rankdir: str = "TB", all_paths: bool = False) -> str:
    """A Mermaid flowchart (renders on GitHub/GitLab): n0, n1, ... in sorted id order,
    top to bottom unless ``rankdir`` says otherwise."""
    ids = {node: f"n{i}" for i, node in enumerate(sorted(result.nodes))}
    opening = {"run": ('["', '"]'), "file": ('(["', '"])'), "item": ('[["', '"]]')}
    lines = [f"flowchart {_check_rankdir(rankdir)}"]
    for node, short in ids.items():
        data = result.nodes[node]
        left, right = opening[data["kind"]]
        label = "<br/>".join(_mermaid_text(line)
                             for line in node_lines(result, node, all_paths=all_paths))
        lines.append(f"  %% {short} = {node}")
        lines.append(f"  {short}{left}{label}{right}")
    for edge in result.edges:
        lines.append(f"  {ids[edge['from']]} -->|{edge['relation']}| {ids[edge['to']]}")
    lines += ["  classDef run fill:#9FB1FC,stroke:#333;",
              "  classDef file fill:#FFFC87,stroke:#333;",
              "  classDef item fill:#E8D5FF,stroke:#333;",
              "  classDef broken stroke:#D00000,stroke-width:3px;"]
    for kind in ("run", "file", "item"):
        members = [ids[n] for n in sorted(result.nodes) if result.nodes[n]["kind"] == kind]
        if members:
            lines.append(f"  class {','.join(members)} {kind};")
    broken = sorted({ids[i.node] for i in result.issues if i.node in ids},
                    key=lambda s: int(s[1:]))
    if broken:
        lines.append(f"  class {','.join(broken)} broken;")
    return "\n".join(lines) + "\n"


# --- the closure as one PROV document -------------------------------------------------------------

def closure_document(config: LakeConfig, result: Trace) -> ProvDocument:
    """The closure as one flat PROV document, built from the runs' receipts.

    Each run as in its ``prov.json`` (``ProvBuilder``), the same bytes in two zones linked
    by a ``kfm:Copy`` derivation, and for each promoted version in the closure its
    promotion, taken from the version's bundle. Bytes that several runs produced are one
    content entity with one specialization per run output, so every run keeps its own
    generation and the document stays valid PROV. Runs whose receipts cannot be read are
    left out: the trace already names them.
    """
    from prov.model import ProvDocument

    from kfm_prov.prov.document import ProvBuilder, report_state, run_states
    from kfm_prov.prov.merge import merge_promotion
    from kfm_prov.store.digests import sha256_bytes
    from kfm_prov.store.evidence import REPORT_FILE
    from kfm_prov.store.receipts import load_run_receipts

    builder = ProvBuilder(config.namespace)
    runs = sorted((n for n in result.nodes.values() if n["kind"] == "run" and "status" in n),
                  key=lambda n: (n["started_at"], n["run_id"]))
    for run in runs:
        run_dir = run["run_dir"]
        try:
            receipts = load_run_receipts(config.root / run_dir, display=run_dir)
            inputs, outputs, _ = run_states(config, receipts)
            report = sha256_bytes((config.root / run_dir / REPORT_FILE).read_bytes())
        except (InputError, OSError):
            continue
        builder.run(receipts, inputs, outputs, report=report_state(run_dir, report),
                    publish_user=config.publish_user, public_params=config.public_params)
    builder.link_copies()
    for item in sorted((n for n in result.nodes.values() if n["kind"] == "item"),
                       key=lambda n: (n["promoted_at"], n["item_id"])):
        path = config.root / str(item["bundle"])
        if not item["bundle"] or not path.is_file():
            continue
        stored = ProvDocument.deserialize(source=str(path), format="json")
        for bundle in stored.bundles:
            merge_promotion(builder, bundle.get_records())
    return builder.doc


def _newest_zone_first(zone: str) -> int:
    """Copies are listed processed, work, raw; anything else (external) after them."""
    return -zone_rank(zone) if zone_rank(zone) < zone_rank("external") else 1


def render(config: LakeConfig, result: Trace, fmt: str, *, rankdir: str = "TB",
           all_paths: bool = False) -> str:
    """``result`` in one of ``FORMATS`` (``tree`` as plain text); ``rankdir`` and
    ``all_paths`` shape the graphs (dot, mermaid)."""
    if fmt == "tree":
        return render_tree(result)
    if fmt == "json":
        from kfm_prov.core.jsonio import dumps_text

        return dumps_text(result.to_dict()) + "\n"
    if fmt == "dot":
        return to_dot(result, rankdir=rankdir, all_paths=all_paths)
    if fmt == "mermaid":
        return to_mermaid(result, rankdir=rankdir, all_paths=all_paths)
    if fmt == "prov-json":
        from kfm_prov.prov.document import prov_json_bytes

        return prov_json_bytes(closure_document(config, result)).decode("utf-8")
    raise InputError(f"unknown format {fmt!r}; one of {', '.join(FORMATS)}", field="--format")
