"""What the audit site shows, read from the lake through the library: a typed snapshot.

Everything comes from published records (certificates, STAC, DCAT, PROV bundles under the
configured ``processed``/``stac``/``prov``/``dcat`` directories), the lineage index and the
runs' receipts. Nothing from ``data/work`` is copied: work files are described by path,
digest and role only, and logs are read only when the caller asks for them.

The snapshot is deterministic: every list is sorted, and nothing records when it was made.
Products and raw sources are hashed fresh (never the digest cache) so a page never offers a
download whose bytes differ from what the certificate proved.
"""

from __future__ import annotations

import json
import os
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kfm_prov.config import SENSITIVITIES, LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.errors import InputError, NotFoundError
from kfm_prov.store.index import PromotionRow, RunRow
from kfm_prov.store.protocol import LineageStore

LOG_EXCERPT_LINES = 40
LOG_LINE_CHARS = 400
_SENSITIVITY_RANK = {name: rank for rank, name in enumerate(SENSITIVITIES)}


def sensitivity_rank(value: str | None) -> int:
    """Higher is more sensitive; an unknown label counts as the most sensitive."""
    if value is None:
        return 0
    return _SENSITIVITY_RANK.get(value, len(SENSITIVITIES))


@dataclass(frozen=True)
class Product:
    path: str  # root-relative, in processed
    name: str  # path inside the version directory
    digest: str
    size: int | None
    media_type: str | None
    sensitivity: str | None
    source_path: str
    intact: bool  # bytes on disk hash to the certified digest
    #: The version that first published these bytes, when carried forward unchanged.
    carried_from: str | None = None


@dataclass(frozen=True)
class RawSource:
    path: str
    digest: str
    license: str | None
    attribution: str | None
    sensitivity: str | None


@dataclass(frozen=True)
class Signature:
    """``<family>/<version>.intoto.jsonl`` next to the certificate: present or not."""

    path: str
    present: bool
    key_ids: tuple[str, ...] = ()
    readable: bool = True


@dataclass
class Version:
    family: str
    version: str
    run_id: str
    promoted_at: str
    item_id: str
    item: str | None  # root-relative STAC item
    bundle: str | None
    certificate: str | None
    checks: list[dict[str, Any]] = field(default_factory=list)
    merkle: dict[str, Any] = field(default_factory=dict)
    waiver: Any = None
    issued_at: str | None = None
    products: list[Product] = field(default_factory=list)
    raw_sources: list[RawSource] = field(default_factory=list)
    commits: list[str] = field(default_factory=list)  # pipeline commits of the closure
    pipelines: list[str] = field(default_factory=list)
    findings: list[Finding] = field(default_factory=list)  # certificate no longer holds
    signature: Signature | None = None
    graph: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.family}/{self.version}"

    @property
    def holds(self) -> bool:
        return self.certificate is not None and not self.findings


@dataclass
class Family:
    name: str
    title: str | None = None
    description: str | None = None
    versions: list[Version] = field(default_factory=list)  # oldest first
    runs: list[str] = field(default_factory=list)
    collection: str | None = None  # root-relative STAC collection
    dcat: str | None = None

    @property
    def latest(self) -> Version | None:
        return self.versions[-1] if self.versions else None

    @property
    def licenses(self) -> list[str]:
        return sorted({r.license or "unknown" for v in self.versions for r in v.raw_sources})

    @property
    def sensitivity(self) -> str:
        """The most sensitive label among published products."""
        labels = [p.sensitivity or "public" for v in self.versions for p in v.products]
        return max(labels, key=sensitivity_rank, default="public")

    @property
    def source_sensitivity(self) -> str:
        """The most sensitive label among the raw sources of its versions."""
        labels = [r.sensitivity or "public" for v in self.versions for r in v.raw_sources]
        return max(labels, key=sensitivity_rank, default="public")


@dataclass
class RunPage:
    run_id: str
    family: str
    pipeline_id: str
    git_commit: str
    spec_hash: str
    status: str
    validation: str
    started_at: str
    ended_at: str | None
    command: list[str] | None = None
    repository: str | None = None
    params: dict[str, Any] = field(default_factory=dict)
    inputs: list[dict[str, Any]] = field(default_factory=list)
    outputs: list[dict[str, Any]] = field(default_factory=list)
    gates: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    failure: str | None = None
    waiver: str | None = None
    receipts_error: str | None = None
    logs: list[str] | None = None  # excerpt, only with include_logs
    versions: list[str] = field(default_factory=list)  # family/version it was promoted as


@dataclass
class SiteModel:
    families: list[Family]
    runs: dict[str, RunPage]
    include_logs: bool
    stac_catalog: str | None  # root-relative, when every family is shown

    @property
    def versions(self) -> list[Version]:
        return [v for f in self.families for v in f.versions]


# --- collecting ------------------------------------------------------------------------------

def family_metadata(config: LakeConfig) -> dict[str, dict[str, str]]:
    """``[families.NAME]`` title and description, as the lake's config holds them."""
    return {name: {k: v for k, v in (("title", meta.title), ("description", meta.description))
                   if v and v.strip()}
            for name, meta in config.families.items()}


def collect(config: LakeConfig, families: Sequence[str] = (), *,
            include_logs: bool = False) -> SiteModel:
    """The snapshot the site renders. Reads only.

    ``families`` restricts the site (unknown names raise ``NotFoundError``); run pages are
    made for every run of the shown families and every run their versions' lineage names.
    """
    from kfm_prov.store.rebuild import index_for

    with index_for(config) as index:
        all_runs = index.runs()
        promotions = index.promotions()
        names = sorted({r.family for r in all_runs} | {p.family for p in promotions})
        wanted = sorted(set(families))
        for name in wanted:
            if name not in names:
                raise NotFoundError(f"no family {name!r} in the lake", field="--family",
                                    hint="known: " + ", ".join(names) if names else
                                    "the lake has no runs yet")
        shown = wanted or names
        meta = family_metadata(config)
        by_family: dict[str, list[PromotionRow]] = defaultdict(list)
        for row in promotions:
            by_family[row.family].append(row)
        out: list[Family] = []
        for name in shown:
            info = meta.get(name, {})
            family = Family(name, title=info.get("title"), description=info.get("description"))
            family.runs = sorted(r.run_id for r in all_runs if r.family == name)
            family.versions = _versions(config, index, by_family.get(name, []))
            family.collection = _existing(config, f"{config.rel('stac')}/{name}/collection.json")
            family.dcat = _existing(config, f"{config.rel('dcat')}/{name}.ttl")
            out.append(family)
        run_ids = {r for f in out for r in f.runs}
        run_ids |= {n[4:] for f in out for v in f.versions for n in v.graph.get("nodes", {})
                    if n.startswith("run:")}
        rows = index.runs_by_id(sorted(run_ids))
        promoted_as: dict[str, list[str]] = defaultdict(list)
        for row in promotions:
            key = f"{row.family}/{row.version}"
            if key not in promoted_as[row.run_id]:
                promoted_as[row.run_id].append(key)
    jobs = [(config, rows[run_id], include_logs, sorted(promoted_as.get(run_id, [])))
            for run_id in sorted(rows)]
    runs = {page.run_id: page for page in parallel_map(_run_pages, jobs)}
    catalog = None if wanted else _existing(config, f"{config.rel('stac')}/catalog.json")
    return SiteModel(out, runs, include_logs, catalog)


def _existing(config: LakeConfig, rel: str) -> str | None:
    return rel if (config.root / rel).is_file() else None


def _versions(config: LakeConfig, index: LineageStore,
              rows: list[PromotionRow]) -> list[Version]:
    from kfm_prov.publish.stac import item_id

    grouped: dict[str, list[PromotionRow]] = defaultdict(list)
    for row in rows:
        grouped[row.version].append(row)
    versions = []
    for version, members in grouped.items():
        first = min(members, key=lambda r: (r.promoted_at, r.path))
        versions.append(Version(
            family=first.family, version=version, run_id=first.run_id,
            promoted_at=first.promoted_at, item_id=item_id(first.family, version),
            item=first.item if first.item and (config.root / first.item).is_file() else None,
            bundle=first.bundle if first.bundle and (config.root / first.bundle).is_file()
            else None,
            certificate=first.certificate))
    versions.sort(key=lambda v: (v.promoted_at, v.version))
    for v in versions:
        _certificate(config, v, [r for r in rows if r.version == v.version])
        v.signature = _signature(config, v)
        v.graph = lineage_graph(config, index, v)
    return versions


def _certificate(config: LakeConfig, version: Version, rows: list[PromotionRow]) -> None:
    """Checks, Merkle root, products and raw sources from the certificate, and whether it
    still holds (``verify_certificate``: products, raw sources and evidence re-hashed)."""
    from kfm_prov.store.certificate import read_certificate_data, verify_certificate
    from kfm_prov.store.digests import hash_files

    rel = version.certificate
    if rel is None or not (config.root / rel).is_file():
        version.certificate = None
        version.findings = [Finding("missing-certificate", "the version has no certificate",
                                    rel)]
        version.products = [_product(config, r.path, r.digest, None, None, None, r.source_path,
                                     False) for r in sorted(rows, key=lambda r: r.path)]
        return
    try:
        cert = read_certificate_data(config, rel)
    except InputError as exc:
        version.findings = exc.findings or [Finding("certificate-invalid", exc.message, rel)]
        version.products = [_product(config, r.path, r.digest, None, None, None, r.source_path,
                                     False) for r in sorted(rows, key=lambda r: r.path)]
        return
    version.checks = list(cert["checks"])
    version.merkle = dict(cert["merkle"])
    version.waiver = cert.get("waiver")
    version.issued_at = cert.get("issued_at")
    paths = [p["path"] for p in cert["products"]]
    present = [p for p in paths if (config.root / p).is_file()]
    fresh = dict(zip(present, hash_files([config.root / p for p in present]), strict=True))
    version.products = sorted(
        (_product(config, p["path"], p["digest"], p.get("size"), p.get("media_type"),
                  p.get("sensitivity"), p.get("source_path", ""),
                  fresh.get(p["path"]) == p["digest"], _carried_version(p))
         for p in cert["products"]),
        key=lambda p: p.path)
    version.raw_sources = sorted(
        (RawSource(e["path"], e["digest"], e.get("license"), e.get("attribution"),
                   e.get("sensitivity")) for e in cert["closure"]["entities"]
         if e.get("kind") == "raw"), key=lambda r: (r.path, r.digest))
    runs = cert["closure"]["runs"]
    version.commits = sorted({r["git_commit"] for r in runs})
    version.pipelines = sorted({r["pipeline_id"] for r in runs})
    version.findings = verify_certificate(config, rel, fresh)


def _product(config: LakeConfig, path: str, digest: str, size: int | None,
             media_type: str | None, sensitivity: str | None, source_path: str,
             intact: bool, carried_from: str | None = None) -> Product:
    prefix = f"{config.rel('processed')}/"
    parts = path.removeprefix(prefix).split("/", 2)
    name = parts[2] if len(parts) == 3 else path.rsplit("/", 1)[-1]
    return Product(path, name, digest, size, media_type, sensitivity, source_path, intact,
                   carried_from)


def _carried_version(entry: dict[str, Any]) -> str | None:
    origin = entry.get("carried_from")
    return str(origin.get("version")) if isinstance(origin, dict) else None


def _signature(config: LakeConfig, version: Version) -> Signature:
    """Whether an in-toto/DSSE attestation sits beside the certificate, and its key ids.

    The site does not verify it (``kfm-prov`` signing does); it only says it is there.
    """
    rel = f"{config.rel('prov')}/{version.family}/{version.version}.intoto.jsonl"
    path = config.root / rel
    if not path.is_file():
        return Signature(rel, False)
    keys: set[str] = set()
    try:
        text = path.read_text(encoding="utf-8")
        for line in text.splitlines():
            if not line.strip():
                continue
            envelope = jsonio.loads(line, file=rel)
            for sig in envelope.get("signatures", []) if isinstance(envelope, dict) else []:
                if isinstance(sig, dict) and isinstance(sig.get("keyid"), str) \
                        and sig["keyid"].strip():
                    keys.add(sig["keyid"])
    except (OSError, UnicodeDecodeError, InputError):
        return Signature(rel, True, (), readable=False)
    return Signature(rel, True, tuple(sorted(keys)))


# --- the lineage graph of a version ----------------------------------------------------------

def lineage_graph(config: LakeConfig, index: LineageStore, version: Version) -> dict[str, Any]:
    """Nodes and edges of the version's lineage, up to its raw sources and down to what was
    derived from it, each marked with the side it lies on and whether the certificate
    proved it. The JSON the graph page draws (and the plain-HTML table lists)."""
    from kfm_prov.trace import item_node, trace

    target_node = item_node(version.item_id)
    digests = sorted({p.digest for p in version.products})
    try:
        up = trace(config, version.item_id)
        down = trace(config, version.item_id, down=True)
    except InputError as exc:  # the version's products left the index
        return {"target": target_node, "nodes": {}, "edges": [],
                "issues": [{"node": target_node, "code": "not-indexed",
                            "message": exc.one_line()}]}
    proved = _proved(config, version)
    redacted = {r.output for r in index.redactions(
        sorted(n[4:] for n in up.nodes if n.startswith("run:")))}
    io_sensitivity: dict[str, str] = {}
    for row in index.files(sorted(n[4:] for n in {**up.nodes, **down.nodes}
                                  if n.startswith("run:"))):
        if row.sensitivity and sensitivity_rank(row.sensitivity) > sensitivity_rank(
                io_sensitivity.get(row.digest)):
            io_sensitivity[row.digest] = row.sensitivity
    nodes: dict[str, dict[str, Any]] = {}
    for side, result in (("up", up), ("down", down)):
        for node_id, data in result.nodes.items():
            if node_id in nodes:
                continue
            nodes[node_id] = _graph_node(data, side, node_id in proved["nodes"], redacted,
                                         io_sensitivity)
    nodes[target_node]["side"] = "target"
    for digest in digests:
        node = nodes.get(f"file:{digest}")
        if node is not None:
            node["side"] = "target"
    edges = {}
    for result in (up, down):
        for edge in result.edges:
            key = (edge["from"], edge["to"], edge["relation"])
            if key not in edges:
                edges[key] = {"from": edge["from"], "to": edge["to"],
                              "relation": edge["relation"], "role": edge.get("role"),
                              "proved": key in proved["edges"]}
    issues = sorted({(i.node, i.code, i.message) for i in up.issues})
    graph = {"target": target_node,
             "nodes": {k: nodes[k] for k in sorted(nodes)},
             "edges": [edges[k] for k in sorted(edges)],
             "issues": [{"node": n, "code": c, "message": m} for n, c, m in issues]}
    layout(graph)
    return graph


LAYER_GAP = 190  # px between layers (left to right, cause → effect)
ROW_GAP = 56  # px between nodes of one layer
_SWEEPS = 4


def layout(graph: dict[str, Any]) -> None:
    """Layered positions (``x``, ``y``) for every node, computed here once.

    The browser lays out a small view with dagre; a big one (hundreds of nodes) it places
    at these positions, because dagre's dummy nodes for long edges (a raw config file
    read by every run of a 1,000-run chain) make it take minutes. Layers: longest path
    from the sources, then each source moved next to its first consumer; order within a
    layer: a few barycenter sweeps over direct neighbours (no dummy nodes). Deterministic.
    """
    nodes = sorted(graph["nodes"])
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for edge in graph["edges"]:
        if edge["from"] in preds and edge["to"] in preds and edge["from"] != edge["to"]:
            succs[edge["from"]].append(edge["to"])
            preds[edge["to"]].append(edge["from"])
    rank: dict[str, int] = {}
    waiting = {n: len(preds[n]) for n in nodes}
    ready = [n for n in nodes if not waiting[n]]
    while ready:
        node = ready.pop()
        rank[node] = max((rank[p] + 1 for p in preds[node]), default=0)
        for nxt in succs[node]:
            waiting[nxt] -= 1
            if not waiting[nxt]:
                ready.append(nxt)
    for node in nodes:  # on a cycle (never in a valid lake): after what is placed
        if node not in rank:
            rank[node] = max((rank.get(p, 0) + 1 for p in preds[node]), default=0)
    for node in nodes:
        if not preds[node] and succs[node]:
            rank[node] = max(0, min(rank[s] for s in succs[node]) - 1)
    layers: dict[int, list[str]] = defaultdict(list)
    for node in nodes:
        layers[rank[node]].append(node)
    position = {n: float(i) for layer in layers.values() for i, n in enumerate(layer)}
    order = sorted(layers)
    for sweep in range(_SWEEPS):
        forward = sweep % 2 == 0
        for r in (order if forward else reversed(order)):
            layer = layers[r]
            near = preds if forward else succs

            def centre(node: str, near: dict[str, list[str]] = near) -> tuple[float, str]:
                around = near[node]
                mean = (sum(position[x] for x in around) / len(around) if around
                        else position[node])
                return (mean, node)

            layer.sort(key=centre)
            for i, node in enumerate(layer):
                position[node] = float(i) - (len(layer) - 1) / 2
    for r, layer in layers.items():
        for i, node in enumerate(layer):
            graph["nodes"][node]["x"] = r * LAYER_GAP
            graph["nodes"][node]["y"] = round((i - (len(layer) - 1) / 2) * ROW_GAP)


def _proved(config: LakeConfig, version: Version) -> dict[str, set[Any]]:
    """Nodes and edges the certificate lists: the path the gate proved."""
    from kfm_prov.store.certificate import read_certificate_data
    from kfm_prov.trace import item_node

    nodes: set[str] = set()
    edges: set[tuple[str, str, str]] = set()
    if version.certificate is None:
        return {"nodes": nodes, "edges": edges}
    try:
        cert = read_certificate_data(config, version.certificate)
    except InputError:
        return {"nodes": nodes, "edges": edges}
    nodes |= {f"run:{r['run_id']}" for r in cert["closure"]["runs"]}
    nodes |= {f"file:{e['digest']}" for e in cert["closure"]["entities"]}
    edges |= {(a, b, rel) for a, b, rel in cert["closure"]["edges"]}
    item = item_node(version.item_id)
    nodes.add(item)
    for product in cert["products"]:
        file_id = f"file:{product['digest']}"
        nodes.add(file_id)
        edges.add((f"run:{cert['run_id']}", file_id, "generated"))
        edges.add((file_id, item, "published"))
    return {"nodes": nodes, "edges": edges}


def _graph_node(data: Any, side: str, proved: bool, redacted: set[str],
                io_sensitivity: dict[str, str]) -> dict[str, Any]:
    kind = data["kind"]
    node: dict[str, Any] = {"id": data["id"], "kind": kind, "side": side, "proved": proved}
    if kind == "run":
        for key in ("run_id", "family", "pipeline_id", "git_commit", "status", "validation",
                    "started_at"):
            if key in data:
                node[key] = data[key]
        node["zone"] = "run"
        node["label"] = f"run {data['run_id'][:10]}…\n{data.get('pipeline_id', '?')}"
        return node
    if kind == "item":
        node.update({k: data[k] for k in ("item_id", "family", "version")})
        node["zone"] = "stac"
        node["label"] = f"STAC {data['item_id']}"
        return node
    copies = data["copies"]
    zones = {c["zone"] for c in copies}
    zone = next((z for z in ("raw", "processed", "work") if z in zones), "external")
    node["zone"] = zone
    node["digest"] = data["digest"]
    node["paths"] = [{"path": c["path"], "zone": c["zone"]} for c in copies]
    node["raw"] = [{k: r.get(k) for k in ("path", "license", "attribution", "sensitivity")}
                   for r in data["raw"]]
    node["promotions"] = [f"{p['family']}/{p['version']}" for p in data["promotions"]]
    labels = [r.get("sensitivity") or "public" for r in data["raw"]]
    if data["digest"] in io_sensitivity:
        labels.append(io_sensitivity[data["digest"]])
    node["sensitivity"] = max(labels, key=sensitivity_rank, default="public")
    node["redacted"] = any(c["path"] in redacted for c in copies)
    shown = next((c["path"] for c in copies if c["zone"] == zone), copies[0]["path"]
                 if copies else data["digest"])
    node["label"] = f"{zone.upper()} {shown.rsplit('/', 1)[-1]}"
    return node


# --- run pages: many, independent, so spread over processes ----------------------------------

PARALLEL_FROM = 400  # items; below this a process pool costs more than it saves
CHUNK = 250


def parallel_map(fn: Callable[[list[Any]], list[Any]], items: list[Any]) -> list[Any]:
    """``fn`` over chunks of ``items``, in order; in worker processes for long lists.

    Reading and validating 10,000 runs' receipts and rendering their pages is pure Python
    work: the processes use every core. Order and output do not depend on the workers.
    """
    chunks = [items[i:i + CHUNK] for i in range(0, len(items), CHUNK)]
    workers = min(4, len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity")
                  else os.cpu_count() or 1)
    if len(items) < PARALLEL_FROM or workers < 2:
        return [out for chunk in chunks for out in fn(chunk)]
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("fork" if sys.platform == "linux" else "spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        return [out for done in pool.map(fn, chunks) for out in done]


def _run_pages(jobs: list[tuple[LakeConfig, RunRow, bool, list[str]]]) -> list[RunPage]:
    return [_run_page(*job) for job in jobs]


# --- run pages -------------------------------------------------------------------------------

def _run_page(config: LakeConfig, row: RunRow, include_logs: bool,
              versions: list[str]) -> RunPage:
    """A run's receipts as its page shows them. Work files are described, never copied."""
    from kfm_prov.store.receipts import load_run_receipts

    page = RunPage(row.run_id, row.family, row.pipeline_id, row.git_commit, row.spec_hash,
                   row.status, row.overall_status, row.started_at, row.ended_at,
                   versions=versions)
    try:
        receipts = load_run_receipts(config.root / row.run_dir, display=row.run_dir)
    except InputError as exc:
        page.receipts_error = exc.one_line()
        return page
    record, manifest, report = receipts.record, receipts.manifest, receipts.report
    page.command = list(record.command) if record.command else None
    repository = record.extra.get("repository") or record.extra.get("git_repository")
    page.repository = repository if isinstance(repository, str) else None
    page.exit_code = record.exit_code
    page.params = dict(manifest.params)
    page.inputs = [_io(config, e.to_dict()) for e in manifest.inputs]
    page.outputs = [_io(config, e.to_dict()) for e in manifest.outputs]
    page.gates = [g.to_dict() for g in report.gates]
    page.waiver = report.waiver
    failed = [g for g in report.gates if g.status == "fail"]
    if record.status != "success" or failed:
        reasons = [f"{g.name}: {g.details.get('reason') or g.details.get('message') or 'fail'}"
                   for g in failed]
        if record.exit_code not in (None, 0):
            reasons.insert(0, f"exit code {record.exit_code}")
        page.failure = "; ".join(str(r) for r in reasons) or f"status {record.status}"
    if include_logs:
        page.logs = _log_excerpt(config, f"{row.run_dir}/logs/run.log")
    return page


def _io(config: LakeConfig, entry: dict[str, Any]) -> dict[str, Any]:
    out = {k: entry.get(k) for k in ("path", "digest", "role", "size", "media_type")}
    out["zone"] = config.zone_of(entry["path"])
    sensitivity = entry.get("sensitivity")
    if sensitivity is not None:
        out["sensitivity"] = sensitivity
    return out


def _log_excerpt(config: LakeConfig, rel: str) -> list[str]:
    """The last lines of the run's (already scrubbed) log, each cut to a readable length.

    A log reached through a symlink is not the run's: it is not shown.
    """
    from kfm_prov.core.paths import symlink_on_the_way

    if symlink_on_the_way(config.root, rel):
        return [f"({rel} is a symlink: not shown)"]
    try:
        data = (config.root / rel).read_bytes()
    except OSError:
        return []
    lines = data.decode("utf-8", errors="replace").splitlines()[-LOG_EXCERPT_LINES:]
    return [line if len(line) <= LOG_LINE_CHARS else line[:LOG_LINE_CHARS] + "…"
            for line in lines]


def graph_json(graph: dict[str, Any]) -> str:
    """The graph as compact, sorted JSON (deterministic)."""
    return json.dumps(graph, sort_keys=True, separators=(",", ":"), ensure_ascii=True)
