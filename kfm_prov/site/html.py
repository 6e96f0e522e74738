"""Small HTML helpers: escaping, relative links, the page frame, badges and tables.

Plain strings and the stdlib (``html.escape``), no template engine: the pages are few and
their structure lives in ``pages.py``. Every value that came from the lake is escaped here.
"""

from __future__ import annotations

import posixpath
from collections.abc import Iterable, Sequence
from html import escape
from urllib.parse import quote

from kfm_prov import __version__

SITE_NAME = "kfm-prov audit site"
# cytoscape.js adds one fixed <style> element; its hash is allowed, nothing else inline.
CYTOSCAPE_STYLE_HASH = "'sha256-pgvDUBa4IjFA2yuSJ2cqcyxmNYJMborsd0ORcRv9vw8='"
CSP = ("default-src 'none'; script-src 'self'; style-src 'self' " + CYTOSCAPE_STYLE_HASH
       + "; img-src 'self' data:; base-uri 'none'; form-action 'none'")

_STATUS_TEXT = {"pass": "✓ pass", "fail": "✗ fail", "warn": "! warn", "skip": "– skip",
                "success": "✓ success", "failed": "✗ failed", "running": "… running",
                "interrupted": "✗ interrupted"}


def e(value: object) -> str:
    """Escaped text of any value (None shows as an em dash)."""
    return "—" if value is None else escape(str(value), quote=True)


def href(page: str, target: str) -> str:
    """``target`` (a site path) as a relative, URL-quoted link from ``page``."""
    base = posixpath.dirname(page) or "."
    return quote(posixpath.relpath(target, base), safe="/#._-~")


def link(page: str, target: str, text: str, *, cls: str | None = None) -> str:
    attr = f' class="{cls}"' if cls else ""
    return f'<a href="{href(page, target)}"{attr}>{e(text)}</a>'


def badge(status: str, *, label: str | None = None) -> str:
    """A status as text and a symbol, coloured as well: colour is never the only signal."""
    kind = {"pass": "ok", "success": "ok", "public": "ok", "present": "ok",
            "fail": "bad", "failed": "bad", "interrupted": "bad", "absent": "muted",
            "restricted": "warn", "sensitive-location": "bad", "warn": "warn",
            "redacted": "warn"}.get(status, "muted")
    text = label or _STATUS_TEXT.get(status, status)
    return f'<span class="badge badge-{kind}">{e(text)}</span>'


def sensitivity_badge(value: str | None) -> str:
    value = value or "public"
    symbol = "" if value == "public" else "⚠ "
    return badge(value, label=f"{symbol}{value}")


def code(value: object) -> str:
    return f"<code>{e(value)}</code>"


def digest(value: str, *, full: bool = True) -> str:
    """A digest in a ``<code>`` that wraps; ``full=False`` shows 12 hex digits and a title."""
    if full:
        return f'<code class="digest">{e(value)}</code>'
    short = value.removeprefix("sha256:")[:12]
    return f'<code class="digest" title="{e(value)}">sha256:{e(short)}…</code>'


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], *, caption: str | None = None,
          cls: str = "") -> str:
    """A table of already-escaped cells, with header scope for screen readers."""
    head = "".join(f'<th scope="col">{e(h)}</th>' for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    cap = f"<caption>{e(caption)}</caption>" if caption else ""
    return (f'<div class="table-wrap"><table class="{cls}">{cap}<thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def definition_list(items: Iterable[tuple[str, str]]) -> str:
    return "<dl>" + "".join(f"<dt>{e(k)}</dt><dd>{v}</dd>" for k, v in items) + "</dl>"


def page(path: str, title: str, body: str, *, crumbs: Sequence[tuple[str, str]] = (),
         scripts: Sequence[str] = (), internal: bool = False) -> bytes:
    """The frame of every page: skip link, breadcrumbs, main, footer. ``path`` is the
    page's own site path (links are made relative to it), ``scripts`` site paths."""
    nav = [link(path, "index.html", "Catalog")]
    nav += [link(path, target, text) for text, target in crumbs]
    trail = " <span aria-hidden=\"true\">›</span> ".join(nav)
    banner = ""
    if internal:
        banner = ('<div class="internal" role="note"><strong>Internal audit site.</strong>'
                  " Run pages include excerpts of (scrubbed) logs: do not publish it.</div>")
    tags = "".join(f'<script src="{href(path, s)}"></script>' for s in scripts)
    html = f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="{CSP}">
<meta name="referrer" content="no-referrer">
<title>{e(title)} · {SITE_NAME}</title>
<link rel="stylesheet" href="{href(path, "static/site.css")}">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><nav aria-label="Breadcrumb">{trail}</nav></header>
{banner}<main id="main" tabindex="-1">
<h1>{e(title)}</h1>
{body}
</main>
<footer>Made by kfm-prov {e(__version__)} from the lake's published records. A static site:
it makes no network request.</footer>
{tags}</body>
</html>
"""
    return html.encode("utf-8")
