"""The audit site: every family, version, certificate and lineage graph as static pages.

``build_site(config, OUT_DIR)`` writes the folder (``kfm-prov site``); ``render_site``
returns the same pages in memory (a dict of site path → bytes, plus the published files
to serve beside them) for a server such as ``kfm-prov serve``.
"""

from __future__ import annotations

from kfm_prov.site.build import Site, SiteResult, build_site, render_site

__all__ = ["Site", "SiteResult", "build_site", "render_site"]
