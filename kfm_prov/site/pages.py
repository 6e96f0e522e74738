"""The pages of the audit site, each a function of the snapshot (``model.SiteModel``).

Site paths (relative to the site's root; every link is relative, so the folder works from
disk and from any static host):

    index.html                              catalog and search
    families/<family>/index.html            versions as a timeline, what changed
    families/<family>/<version>/index.html  products, certificate, signature, sources, graph
    families/<family>/<version>/graph.html  the lineage graph alone, full window
    runs/<run_id>.html                      one run's receipts (never its work bytes)
    files/<lake path>                       copies of published records and products
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any

from kfm_prov.errors import InputError
from kfm_prov.site.html import (
    badge,
    code,
    definition_list,
    digest,
    e,
    href,
    link,
    page,
    sensitivity_badge,
    table,
)
from kfm_prov.site.model import Family, RunPage, SiteModel, Version, graph_json
from kfm_prov.store.receipts import validation_label

_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,199}$")
GRAPH_SCRIPTS = ("static/vendor/cytoscape.min.js", "static/vendor/cytoscape-dagre.min.js")
SEARCH_INDEX = "search-index.js"
DIGEST_CHARS = 16  # hex digits of a digest kept in the search index


def safe_name(value: str, what: str) -> str:
    """A family, version or run id used as a directory name: refused when it is not one."""
    if not _SAFE.match(value) or value in (".", ".."):
        raise InputError(f"{what} {value!r} cannot name a page of the site", field=what)
    return value


def family_path(family: str) -> str:
    return f"families/{safe_name(family, 'family')}/index.html"


def version_dir(family: str, version: str) -> str:
    return f"families/{safe_name(family, 'family')}/{safe_name(version, 'version')}"


def version_path(family: str, version: str) -> str:
    return f"{version_dir(family, version)}/index.html"


def graph_path(family: str, version: str) -> str:
    return f"{version_dir(family, version)}/graph.html"


def graph_data_path(family: str, version: str) -> str:
    return f"{version_dir(family, version)}/graph-data.js"


def run_path(run_id: str) -> str:
    return f"runs/{safe_name(run_id, 'run id')}.html"


def file_path(rel: str) -> str:
    """Where a copied lake file sits in the site: its lake path under ``files/``."""
    return f"files/{rel}"


# --- the catalog -----------------------------------------------------------------------------

def catalog_page(model: SiteModel) -> bytes:
    path = "index.html"
    rows = []
    for family in model.families:
        latest = family.latest
        title = family.title or family.name
        name = link(path, family_path(family.name), title)
        if family.title:
            name += f"<br>{code(family.name)}"
        latest_cell = (link(path, version_path(family.name, latest.version), latest.version)
                       + " " + _holds_badge(latest)) if latest else "no published version"
        sens = sensitivity_badge(family.sensitivity)
        if family.source_sensitivity != "public":
            sens += f'<br><span class="note">sources: {e(family.source_sensitivity)}</span>'
        rows.append([name, e(family.description or ""),
                     ", ".join(code(x) for x in family.licenses) or "—", latest_cell,
                     str(len(family.versions)), sens])
    body = f"""
<section aria-labelledby="search-h">
<h2 id="search-h">Search</h2>
<form class="search" role="search" id="search-form">
<label for="search-q">Path, digest prefix, run id or STAC id</label>
<input id="search-q" name="q" type="search" autocomplete="off" spellcheck="false"
 placeholder="e.g. 5b3636 or parcels.geojson">
</form>
<noscript><p class="note">Search needs JavaScript; every page below reads without it.</p></noscript>
<p id="search-status" class="note" role="status" aria-live="polite"></p>
<ol id="search-results" class="results"></ol>
</section>
<section aria-labelledby="families-h">
<h2 id="families-h">Families ({len(model.families)})</h2>
{table(["Family", "Description", "Licenses of sources", "Latest version", "Versions",
        "Sensitivity"], rows, cls="families")}
</section>
<section aria-labelledby="about-h">
<h2 id="about-h">What this site shows</h2>
<p>Every published version of every family with its products (size, sha256, download), the
reconstructibility certificate the promotion gate issued (each check, its reason code and the
Merkle root), whether it still holds against the bytes on disk when this site was made, any
signature, the raw sources with license, attribution and sensitivity, and the lineage graph.
Work files are described (path, digest, role), never served.</p>
</section>"""
    return page(path, "Catalog", body, scripts=(SEARCH_INDEX, "static/search.js"),
                internal=model.include_logs)


def _holds_badge(version: Version) -> str:
    if version.certificate is None:
        return badge("fail", label="✗ no certificate")
    return badge("pass", label="✓ certificate holds") if version.holds else \
        badge("fail", label="✗ certificate does not hold")


# --- a family --------------------------------------------------------------------------------

def family_page(model: SiteModel, family: Family) -> bytes:
    path = family_path(family.name)
    title = family.title or family.name
    links = []
    if family.collection:
        links.append(link(path, file_path(family.collection), "STAC collection (JSON)"))
    if family.dcat:
        links.append(link(path, file_path(family.dcat), "DCAT dataset (Turtle)"))
    intro = [f"<p>Family {code(family.name)}.</p>"]
    if family.description:
        intro.insert(0, f'<p class="lead">{e(family.description)}</p>')
    if links:
        intro.append("<p>Published records: " + " · ".join(links) + "</p>")
    items = []
    previous: Version | None = None
    for version in family.versions:
        vlink = link(path, version_path(family.name, version.version), version.version)
        head = (f'<h3 id="v-{e(version.version)}">{vlink} {_holds_badge(version)}</h3>'
                f'<p>promoted {e(version.promoted_at)} from run '
                f'{link(path, run_path(version.run_id), version.run_id)} · '
                f'{len(version.products)} product(s) · {len(version.raw_sources)} raw source(s)'
                "</p>")
        items.append(f"<li>{head}{_changes(previous, version)}</li>")
        previous = version
    timeline = (f'<ol class="timeline">{"".join(items)}</ol>' if items
                else "<p>No version of this family has been promoted.</p>")
    run_rows = [[link(path, run_path(r), r), e(model.runs[r].pipeline_id),
                 badge(model.runs[r].status),
                 badge(validation_label(model.runs[r].status, model.runs[r].validation)),
                 e(model.runs[r].started_at)]
                for r in family.runs if r in model.runs]
    body = (
        "".join(intro)
        + f'<section aria-labelledby="tl-h"><h2 id="tl-h">Versions ({len(family.versions)})'
        f"</h2>{timeline}</section>"
        + f'<section aria-labelledby="runs-h"><h2 id="runs-h">Runs ({len(run_rows)})</h2>'
        + table(["Run", "Pipeline", "Status", "Validation", "Started"], run_rows)
        + "</section>")
    return page(path, title, body, crumbs=[(title, path)], internal=model.include_logs)


def _changes(before: Version | None, after: Version) -> str:
    """What changed from the previous version: raw sources, pipeline commits, products."""
    if before is None:
        return '<p class="note">First version.</p>'
    lines = []
    old_raw = {(r.path, r.digest) for r in before.raw_sources}
    new_raw = {(r.path, r.digest) for r in after.raw_sources}
    for label, items in (("raw source added", sorted(new_raw - old_raw)),
                         ("raw source removed", sorted(old_raw - new_raw))):
        for p, d in items:
            lines.append(f"{e(label)}: {code(p)} {digest(d, full=False)}")
    if before.commits != after.commits:
        lines.append("pipeline commit(s): " + ", ".join(code(c[:12]) for c in before.commits)
                     + " → " + ", ".join(code(c[:12]) for c in after.commits))
    old_products = {p.name: p.digest for p in before.products}
    new_products = {p.name: p.digest for p in after.products}
    for name in sorted(set(old_products) | set(new_products)):
        if name not in old_products:
            lines.append(f"product added: {code(name)}")
        elif name not in new_products:
            lines.append(f"product removed: {code(name)}")
        elif old_products[name] != new_products[name]:
            lines.append(f"product changed: {code(name)} {digest(old_products[name], full=False)}"
                         f" → {digest(new_products[name], full=False)}")
    carried = [p.name for p in after.products if p.carried_from]
    if carried:
        lines.append("carried forward unchanged: " + ", ".join(code(n) for n in carried))
    if not lines:
        return f'<p class="note">Same sources, commits and products as {e(before.version)}.</p>'
    return (f'<details open><summary>Changes from {e(before.version)}</summary><ul>'
            + "".join(f"<li>{line}</li>" for line in lines) + "</ul></details>")


# --- a version -------------------------------------------------------------------------------

def version_page(model: SiteModel, family: Family, version: Version) -> bytes:
    path = version_path(family.name, version.version)
    title = f"{family.title or family.name} {version.version}"
    records = []
    for label, rel in (("STAC item", version.item), ("PROV bundle", version.bundle),
                       ("certificate (JSON)", version.certificate),
                       ("DCAT dataset", family.dcat)):
        if rel:
            records.append(link(path, file_path(rel), label))
    summary = definition_list([
        ("Family", link(path, family_path(family.name), family.title or family.name)),
        ("Version", e(version.version)),
        ("STAC id", code(version.item_id)),
        ("Promoted", e(version.promoted_at)),
        ("From run", link(path, run_path(version.run_id), version.run_id)),
        ("Published records", " · ".join(records) or "—"),
    ])
    body = (summary + _products(path, version) + _certificate(version)
            + _signature(path, version) + _sources(version) + _lineage(model, path, version))
    scripts = (*GRAPH_SCRIPTS, graph_data_path(family.name, version.version), "static/graph.js")
    return page(path, title, body, crumbs=[(family.title or family.name,
                                            family_path(family.name)), (version.version, path)],
                scripts=scripts, internal=model.include_logs)


def _products(path: str, version: Version) -> str:
    rows = []
    for product in version.products:
        if product.intact:
            get = link(path, file_path(product.path), f"download {product.name}")
        else:
            get = badge("fail", label="✗ bytes differ from the certificate: not offered")
        carried = (f' <span class="note">carried forward unchanged from'
                   f' {e(product.carried_from)}</span>' if product.carried_from else "")
        rows.append([f'<span id="product-{e(product.name)}">{code(product.name)}</span>'
                     + carried,
                     e(_size(product.size)), e(product.media_type),
                     sensitivity_badge(product.sensitivity), digest(product.digest), get])
    return ('<section aria-labelledby="products-h"><h2 id="products-h">Products</h2>'
            + table(["File", "Size", "Media type", "Sensitivity", "sha256", "Download"], rows,
                    cls="products")
            + "</section>")


def _size(size: int | None) -> str:
    if size is None:
        return "—"
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:,} bytes" if unit == "bytes" else f"{size:,.1f} {unit}"
        size = size / 1024  # type: ignore[assignment]
    return str(size)


def _certificate(version: Version) -> str:
    parts = ['<section aria-labelledby="cert-h"><h2 id="cert-h">Certificate</h2>']
    if version.certificate is None:
        parts.append(f'<p>{badge("fail", label="✗ no certificate")} This version has no'
                     " readable reconstructibility certificate.</p>")
    elif version.holds:
        parts.append(f'<p class="verdict">{badge("pass", label="✓ holds")} Re-hashed when this'
                     " site was made: the products, the raw sources and every run's receipts"
                     " still match what the gate proved.</p>")
    else:
        parts.append(f'<p class="verdict">{badge("fail", label="✗ does not hold")} The lake no'
                     " longer matches what the gate proved:</p>")
    if version.findings:
        parts.append('<ul class="findings">' + "".join(
            f"<li>{code(f.code)} {e(f.message)}" + (f" ({code(f.file)})" if f.file else "")
            + "</li>" for f in version.findings) + "</ul>")
    if version.checks:
        items = "".join(
            f'<li class="check" data-check="{e(c["id"])}">{badge(c["status"])} '
            f'<code class="reason">{e(c["id"])}</code> {e(c.get("title", ""))}</li>'
            for c in version.checks)
        parts.append(f'<h3>Checks of the gate ({len(version.checks)})</h3>'
                     f'<ol class="checks">{items}</ol>')
    if version.merkle:
        parts.append(definition_list([
            ("Merkle root", digest(str(version.merkle.get("root")))),
            ("Algorithm", code(version.merkle.get("algorithm"))),
            ("Leaves", e(version.merkle.get("leaves"))),
            ("Issued", e(version.issued_at)),
            ("Waiver", e(json.dumps(version.waiver, sort_keys=True)) if version.waiver
             else "none"),
        ]))
    parts.append("</section>")
    return "".join(parts)


def _signature(path: str, version: Version) -> str:
    sig = version.signature
    head = '<section aria-labelledby="sig-h"><h2 id="sig-h">Signature</h2>'
    if sig is None or not sig.present:
        return (head + f'<p>{badge("absent", label="– not signed")} No attestation'
                f" ({code(sig.path if sig else 'intoto.jsonl')}) was published for this"
                " version.</p></section>")
    if not sig.readable:
        return (head + f'<p>{badge("fail", label="✗ unreadable")} An attestation exists at'
                f" {code(sig.path)} but is not a JSON-lines DSSE envelope.</p></section>")
    keys = ", ".join(code(k) for k in sig.key_ids) or "none named"
    return (head + f'<p>{badge("present", label="✓ attestation present")} '
            f"{link(path, file_path(sig.path), sig.path.rsplit('/', 1)[-1])}; key id(s): {keys}."
            " This site shows that it exists; check it with the signing tool.</p></section>")


def _sources(version: Version) -> str:
    rows = [[code(r.path), e(r.license or "✗ missing"), e(r.attribution or "✗ missing"),
             sensitivity_badge(r.sensitivity), digest(r.digest, full=False)]
            for r in version.raw_sources]
    return ('<section aria-labelledby="raw-h"><h2 id="raw-h">Raw sources</h2>'
            + table(["Path", "License", "Attribution", "Sensitivity", "sha256"], rows,
                    cls="sources")
            + "</section>")


def _lineage(model: SiteModel, path: str, version: Version) -> str:
    graph = version.graph
    nodes = graph.get("nodes", {})
    full = link(path, graph_path(version.family, version.version), "Open the graph full size")
    return ('<section aria-labelledby="lineage-h"><h2 id="lineage-h">Lineage</h2>'
            f"<p>{len(nodes)} nodes, {len(graph.get('edges', []))} edges. {full}.</p>"
            + graph_widget(path, version) + lineage_table(model, path, graph) + "</section>")


def graph_widget(path: str, version: Version) -> str:
    """The interactive graph's mount point, its legend and its details panel."""
    key = e(version.key)
    root = e(href(path, "index.html").removesuffix("index.html"))
    return f"""
<div class="graph-block" data-graph="{key}" data-root="{root}">
<div class="graph-tools" role="toolbar" aria-label="Graph controls">
<button type="button" data-action="fit">Fit</button>
<button type="button" data-action="all">Show all nodes</button>
<button type="button" data-action="down">Show what was derived</button>
<button type="button" data-action="proved">Highlight proved path</button>
</div>
<div class="graph-main">
<div class="graph" tabindex="0" role="img"
 aria-label="Lineage graph of {key}; use the node list or the table below to read it"></div>
<aside class="graph-side" aria-label="Node details">
<div class="node-details" aria-live="polite"><p class="note">Click a node, or pick one from
the list, to see its details.</p></div>
<details class="node-list-wrap"><summary>Nodes shown</summary><ul class="node-list"></ul>
</details>
</aside>
</div>
<ul class="legend" aria-label="Legend">
<li><span class="swatch zone-raw"></span>RAW file (green)</li>
<li><span class="swatch zone-work"></span>WORK file (amber)</li>
<li><span class="swatch zone-processed"></span>PROCESSED file (blue)</li>
<li><span class="swatch zone-run"></span>run (violet box)</li>
<li><span class="swatch zone-stac"></span>STAC item (pink)</li>
<li><span class="swatch proved"></span>thick solid edge: proved by the certificate</li>
<li>⚠ sensitive · ✂ redacted · ⊕ more to expand</li>
</ul>
<noscript><p class="note">The interactive graph needs JavaScript; the table below lists
the same nodes and edges.</p></noscript>
</div>"""


def lineage_table(model: SiteModel, path: str, graph: dict[str, Any]) -> str:
    """The graph as plain HTML: nodes, then edges (the graph without JavaScript)."""
    nodes = graph.get("nodes", {})
    rows = []
    for node in nodes.values():
        what = _node_text(model, path, node)
        flags = []
        if node.get("proved"):
            flags.append("proved")
        if node.get("sensitivity") not in (None, "public"):
            flags.append(f"⚠ {node['sensitivity']}")
        if node.get("redacted"):
            flags.append("✂ redacted")
        rows.append([e(node.get("zone", node["kind"]).upper()), what, e(node["side"]),
                     e(", ".join(flags))])
    edge_rows = [[e(_short(ed["from"])), e(ed["relation"] + (f" ({ed['role']})"
                                                              if ed.get("role") else "")),
                  e(_short(ed["to"])), "proved" if ed["proved"] else ""]
                 for ed in graph.get("edges", [])]
    issues = "".join(f"<li>{code(i['code'])} {e(i['message'])}</li>"
                     for i in graph.get("issues", []))
    return ('<details class="lineage-table"><summary>The lineage as a table</summary>'
            + table(["Zone", "Node", "Side", "Flags"], rows, caption="Nodes")
            + table(["From", "Relation", "To", ""], edge_rows, caption="Edges")
            + (f"<p>Where the lineage is broken:</p><ul>{issues}</ul>" if issues else "")
            + "</details>")


def _short(node_id: str) -> str:
    kind, _, rest = node_id.partition(":")
    if kind == "file":
        return f"file sha256:{rest.removeprefix('sha256:')[:12]}…"
    return f"{kind} {rest}"


def _node_text(model: SiteModel, path: str, node: dict[str, Any]) -> str:
    if node["kind"] == "run":
        run_id = node.get("run_id", node["id"][4:])
        shown = link(path, run_path(run_id), run_id) if run_id in model.runs else e(run_id)
        return f"run {shown} {e(node.get('pipeline_id', ''))}"
    if node["kind"] == "item":
        target = version_path(node["family"], node["version"])
        if any(v.key == f"{node['family']}/{node['version']}" for v in model.versions):
            return f"STAC item {link(path, target, node['item_id'])}"
        return f"STAC item {code(node['item_id'])}"
    paths = "<br>".join(f"{code(p['path'])} ({e(p['zone'])})" for p in node.get("paths", []))
    raw = "".join(f"<br>license {e(r.get('license'))} · {e(r.get('attribution'))}"
                  for r in node.get("raw", []))
    return f"{paths or '—'}<br>{digest(node['digest'], full=False)}{raw}"


def graph_page(model: SiteModel, family: Family, version: Version) -> bytes:
    path = graph_path(family.name, version.version)
    vpath = version_path(family.name, version.version)
    body = (f"<p>Back to {link(path, vpath, f'{family.name} {version.version}')}. Drag to pan,"
            " scroll or pinch to zoom, click a node for its details.</p>"
            + graph_widget(path, version) + lineage_table(model, path, version.graph))
    scripts = (*GRAPH_SCRIPTS, graph_data_path(family.name, version.version), "static/graph.js")
    title = f"Lineage of {family.name} {version.version}"
    return page(path, title, body, crumbs=[(family.title or family.name,
                                            family_path(family.name)),
                                           (version.version, vpath), ("graph", path)],
                scripts=scripts, internal=model.include_logs).replace(
        b"<body>", b'<body class="graph-page">', 1)


def graph_data(version: Version) -> bytes:
    """The graph as a script (``fetch`` of a local file is refused by browsers)."""
    key = json.dumps(version.key)
    data = graph_json(version.graph).replace("</", "<\\/")
    return (f"window.KFM_GRAPHS=window.KFM_GRAPHS||{{}};window.KFM_GRAPHS[{key}]={data};\n"
            .encode())


# --- a run -----------------------------------------------------------------------------------

def run_page(run: RunPage, families: frozenset[str], versions: frozenset[str],
             include_logs: bool) -> bytes:
    """A run's page; ``families`` and ``versions`` (``family/version``) are those the site
    has pages for. A function of plain values, so run pages render in worker processes."""
    path = run_path(run.run_id)
    promoted = " · ".join(link(path, version_path(*key.split("/", 1)), key)
                          for key in run.versions if key in versions) or "—"
    summary = definition_list([
        ("Family", link(path, family_path(run.family), run.family)
         if run.family in families else e(run.family)),
        ("Pipeline", code(run.pipeline_id)),
        ("Repository", code(run.repository) if run.repository else "—"),
        ("Commit", code(run.git_commit)),
        ("Spec hash", digest(run.spec_hash)),
        ("Command", code(" ".join(run.command)) if run.command else "—"),
        ("Status", badge(run.status)),
        ("Validation", badge(validation_label(run.status, run.validation))),
        ("Exit code", e(run.exit_code)),
        ("Started", e(run.started_at)),
        ("Ended", e(run.ended_at)),
        ("Promoted as", promoted),
    ])
    parts = [summary]
    if run.receipts_error:
        parts.append(f'<p class="problem">{badge("fail", label="✗ receipts unreadable")} '
                     f"{e(run.receipts_error)}</p>")
    if run.failure:
        parts.append(f'<p class="problem">{badge("fail", label="✗ failed")} Reason: '
                     f"{e(run.failure)}</p>")
    if run.waiver:
        parts.append(f"<p>Waiver: {code(run.waiver)}</p>")
    param_rows = [[code(k), code(json.dumps(v, sort_keys=True, ensure_ascii=False))]
                  for k, v in sorted(run.params.items())]
    parts.append('<section aria-labelledby="params-h"><h2 id="params-h">Parameters</h2>'
                 + (table(["Name", "Value"], param_rows) if param_rows else "<p>None.</p>")
                 + "</section>")
    for title, entries in (("Inputs", run.inputs), ("Outputs", run.outputs)):
        slug = title.lower()
        parts.append(f'<section aria-labelledby="{slug}-h"><h2 id="{slug}-h">{title}</h2>'
                     + table(["Path", "Zone", "Role", "Size", "sha256"], _io_rows(entries))
                     + "</section>")
    parts.append('<p class="note">Files in the work zone are described here, never served:'
                 " the site links only to published records and products.</p>")
    gate_rows = [[code(g["name"]), badge(g["status"]),
                  code(json.dumps(g.get("details", {}), sort_keys=True, ensure_ascii=False))]
                 for g in run.gates]
    parts.append('<section aria-labelledby="gates-h"><h2 id="gates-h">Gates</h2>'
                 + table(["Gate", "Status", "Details"], gate_rows) + "</section>")
    parts.append(_logs(run))
    return page(path, f"Run {run.run_id}", "".join(parts),
                crumbs=[(run.family, family_path(run.family))] if run.family in families
                else [], internal=include_logs)


def _io_rows(entries: Iterable[dict[str, Any]]) -> list[list[str]]:
    return [[code(x["path"]), e(x["zone"]), e(x["role"]), e(_size(x.get("size"))),
             digest(x["digest"], full=False)] for x in entries]


def _logs(run: RunPage) -> str:
    head = '<section aria-labelledby="logs-h"><h2 id="logs-h">Log excerpt</h2>'
    if run.logs is None:
        return (head + '<p class="note">Logs are not part of this site. An internal audit site'
                " built with <code>kfm-prov site --include-logs</code> shows an excerpt of each"
                " run's (scrubbed) log.</p></section>")
    if not run.logs:
        return head + "<p>The run left no log.</p></section>"
    return (head + f"<p>The last {len(run.logs)} lines of the run's log, as scrubbed when it"
            " was recorded (internal site).</p><pre class=\"log\">"
            + e("\n".join(run.logs)) + "</pre></section>")


# --- the search index ------------------------------------------------------------------------

def search_index(model: SiteModel) -> bytes:
    """``[kind, label, url, [keys...]]`` per family, version, product, raw source and run.

    Keys are lower case; digests keep their first 16 hex digits (a prefix search needs no
    more, and 100,000 digests stay under 2 MB).
    """
    def short(d: str) -> str:
        return "sha256:" + d.removeprefix("sha256:")[:DIGEST_CHARS].lower()

    entries: list[list[Any]] = []
    for family in model.families:
        entries.append(["family", family.title or family.name, family_path(family.name),
                        sorted({family.name.lower(), (family.title or "").lower()} - {""})])
        for v in family.versions:
            vp = version_path(family.name, v.version)
            entries.append(["version", f"{family.name} {v.version}", vp,
                            [f"{family.name} {v.version}".lower(), v.item_id.lower()]])
            for p in v.products:
                entries.append(["product", p.path, f"{vp}#product-{p.name}",
                                [p.path.lower(), short(p.digest), v.item_id.lower()]])
            for r in v.raw_sources:
                entries.append(["raw", f"{r.path} ({family.name} {v.version})", f"{vp}#raw-h",
                                [r.path.lower(), short(r.digest)]])
    for run in model.runs.values():
        keys = [run.run_id.lower(), run.pipeline_id.lower()]
        for entry in (*run.inputs, *run.outputs):
            keys += [entry["path"].lower(), short(entry["digest"])]
        entries.append(["run", f"run {run.run_id} {run.pipeline_id}", run_path(run.run_id),
                        sorted(set(keys))])
    data = json.dumps(entries, ensure_ascii=True, separators=(",", ":")).replace("</", "<\\/")
    return f"window.KFM_SEARCH={data};\n".encode()


def copied_files(model: SiteModel) -> dict[str, str]:
    """Site path → lake path of every published file the site carries (never work files)."""
    out: dict[str, str] = {}

    def add(rel: str | None) -> None:
        if rel:
            out[file_path(rel)] = rel

    add(model.stac_catalog)
    for family in model.families:
        add(family.collection)
        add(family.dcat)
        for v in family.versions:
            for rel in (v.item, v.bundle, v.certificate):
                add(rel)
            if v.signature and v.signature.present and v.signature.readable:
                add(v.signature.path)
            for p in v.products:
                if p.intact:
                    add(p.path)
    return dict(sorted(out.items()))


def href_for(page_path: str, target: str) -> str:
    """Re-exported for ``serve``: a link from one site page to another."""
    return href(page_path, target)
