"""Render the audit site to memory (``render_site``) and write it whole (``write_site``).

``render_site`` returns every page as bytes plus the published lake files the site copies,
so a server (``kfm-prov serve``) can answer from the same pages without a folder.
``write_site`` builds the folder beside ``OUT_DIR`` and swaps it in with one rename
(``renameat2(RENAME_EXCHANGE)`` where the kernel has it), so a reader sees the old site or
the new one, never half of either. It replaces only a folder a previous ``kfm-prov site``
made (marker ``.kfm-prov-site``), and never writes into the lake's data zones.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import shutil
import tempfile
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import kfm_prov.site.pages as pages
from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.paths import check_relative, is_under, symlink_on_the_way
from kfm_prov.errors import CheckFailed, InputError, RefusedError
from kfm_prov.site.model import SiteModel, collect, parallel_map

MARKER = ".kfm-prov-site"
MARKER_TEXT = b"made by kfm-prov site; the whole folder is replaced by the next build\n"
STATIC = ("site.css", "search.js", "graph.js")
VENDOR = ("cytoscape.min.js", "cytoscape-dagre.min.js", "LICENSE.cytoscape",
          "LICENSE.cytoscape-dagre", "LICENSE.dagre", "LICENSE.graphlib", "README.md")
_PUBLISHED = ("processed", "stac", "prov", "dcat")
_ZONES = ("raw", "work", "processed", "stac", "prov", "dcat")


@dataclass
class Site:
    """The rendered site: page bytes by site path, and lake files to copy in."""

    pages: dict[str, bytes]
    files: dict[str, str]  # site path → root-relative lake path
    digests: dict[str, str] = field(default_factory=dict)  # site path → certified digest
    model: SiteModel | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"pages": len(self.pages), "files": len(self.files),
                "families": [f.name for f in self.model.families] if self.model else [],
                "versions": len(self.model.versions) if self.model else 0,
                "runs": len(self.model.runs) if self.model else 0}


@dataclass(frozen=True)
class SiteResult:
    out_dir: Path
    site: Site
    bytes_written: int

    @property
    def index(self) -> Path:
        return self.out_dir / "index.html"

    def to_dict(self) -> dict[str, Any]:
        return {"out_dir": str(self.out_dir), "index": str(self.index),
                "bytes": self.bytes_written, **self.site.to_dict()}


def static_files() -> dict[str, bytes]:
    """The CSS, JavaScript and vendored libraries (with their licenses) shipped inside the
    package; the site never loads anything from elsewhere."""
    base = resources.files("kfm_prov.site") / "static"
    out = {f"static/{name}": (base / name).read_bytes() for name in STATIC}
    out |= {f"static/vendor/{name}": (base / "vendor" / name).read_bytes() for name in VENDOR}
    return out


def render_site(config: LakeConfig, families: tuple[str, ...] | list[str] = (), *,
                include_logs: bool = False) -> Site:
    """Every page of the site in memory. Reads the lake; writes nothing.

    Deterministic: the same lake gives the same bytes (sorted everywhere, no build time).
    """
    model = collect(config, families, include_logs=include_logs)
    out: dict[str, bytes] = dict(static_files())
    out["index.html"] = pages.catalog_page(model)
    out[pages.SEARCH_INDEX] = pages.search_index(model)
    for family in model.families:
        out[pages.family_path(family.name)] = pages.family_page(model, family)
        for version in family.versions:
            out[pages.version_path(family.name, version.version)] = pages.version_page(
                model, family, version)
            out[pages.graph_path(family.name, version.version)] = pages.graph_page(
                model, family, version)
            out[pages.graph_data_path(family.name, version.version)] = pages.graph_data(
                version)
    shown = frozenset(f.name for f in model.families)
    versions = frozenset(v.key for v in model.versions)
    jobs = [(run, shown, versions, include_logs) for run in model.runs.values()]
    out.update(parallel_map(_render_runs, jobs))
    files = pages.copied_files(model)
    for site_path, rel in files.items():
        _check_published(config, rel, site_path)
    digests = {pages.file_path(p.path): p.digest for v in model.versions for p in v.products
               if p.intact}
    return Site(dict(sorted(out.items())), files, digests, model)


def _render_runs(jobs: list[tuple[Any, frozenset[str], frozenset[str], bool]]
                 ) -> list[tuple[str, bytes]]:
    return [(pages.run_path(job[0].run_id), pages.run_page(*job)) for job in jobs]


def _check_published(config: LakeConfig, rel: str, site_path: str) -> None:
    """Only published records and products leave the lake, never work files."""
    check_relative(rel, field=site_path)
    if not any(is_under(rel, config.rel(zone)) for zone in _PUBLISHED) or is_under(
            rel, config.rel("work")) or is_under(rel, config.rel("raw")):
        raise RefusedError(f"the site would copy {rel}, which is not a published record",
                           file=rel, hint="a certificate or index row names a file outside"
                                          " processed/stac/prov/dcat: run kfm-prov verify")


def build_site(config: LakeConfig, out_dir: str | os.PathLike[str],
               families: tuple[str, ...] | list[str] = (), *,
               include_logs: bool = False) -> SiteResult:
    """Render the site and replace ``out_dir`` with it, whole. See ``write_site``."""
    target = check_out_dir(config, Path(out_dir))
    site = render_site(config, families, include_logs=include_logs)
    return write_site(config, site, target)


def check_out_dir(config: LakeConfig, out_dir: Path) -> Path:
    """``out_dir`` made absolute; refused inside the lake's zones, or when it is not empty
    and not a site this command made."""
    target = Path(os.path.abspath(out_dir))
    if target.exists() and not target.is_dir():
        raise InputError("exists and is not a directory", file=str(out_dir))
    resolved = target.resolve()
    for zone in _ZONES:
        zone_dir = config.dir(zone).resolve()
        if resolved == zone_dir or zone_dir in resolved.parents:
            raise InputError(f"the site cannot be written inside the lake's {zone} zone",
                             file=str(out_dir), hint="choose a folder outside data/, e.g."
                                                     " site/")
    if resolved == config.root.resolve() or resolved in config.root.resolve().parents:
        raise InputError("the site would replace the lake", file=str(out_dir))
    if target.is_dir() and any(target.iterdir()) and not (target / MARKER).is_file():
        raise InputError("not empty, and not a site made by kfm-prov site", file=str(out_dir),
                         hint="give a new or empty folder; a previous site is replaced whole")
    return target


def write_site(config: LakeConfig, site: Site, out_dir: Path) -> SiteResult:
    """Write ``site`` into a new folder beside ``out_dir`` and swap it in.

    Copied products are hashed after copying and must match their certificate, or nothing
    is replaced (``CheckFailed``). Mutates only ``out_dir`` (and a temporary sibling).
    """
    from kfm_prov.store.digests import hash_files

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".tmp", dir=out_dir.parent))
    try:
        total = 0
        for site_path, data in site.pages.items():
            _write(tmp / site_path, data)
            total += len(data)
        for site_path, rel in site.files.items():
            if symlink_on_the_way(config.root, rel):
                raise RefusedError(f"{rel} is reached through a symlink: the site copies only"
                                   " published files as they are", file=rel,
                                   hint="published records are regular files; run kfm-prov"
                                        " verify")
            dest = tmp / site_path
            dest.parent.mkdir(parents=True, exist_ok=True)
            jsonio.clone_file(config.root / rel, dest)  # reflink where it can
            os.chmod(dest, 0o644)
            total += dest.stat().st_size
        checked = sorted(p for p in site.digests if p in site.files)
        for site_path, now in zip(checked, hash_files([tmp / p for p in checked]), strict=True):
            if now != site.digests[site_path]:
                raise CheckFailed(f"{site.files[site_path]} changed while the site was made:"
                                  " its copy no longer matches the certificate",
                                  file=site.files[site_path],
                                  hint="run kfm-prov verify, then build the site again")
        _write(tmp / MARKER, MARKER_TEXT)
        _fsync_tree(tmp)
        os.chmod(tmp, 0o755)
        _swap_in(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return SiteResult(out_dir, site, total)


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as handle:
        handle.write(data)


def _fsync_tree(root: Path) -> None:
    """Flush every file and folder of the new site before it becomes visible.

    One ``syncfs`` of the file system that holds it where Linux has it (an fsync per file
    took 27 of 33 s for the 10,000 pages of a synthetic lake), else an fsync per file.
    """
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        fd = os.open(root, os.O_RDONLY)
        try:
            if libc.syncfs(fd) == 0:
                return
        finally:
            os.close(fd)
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            jsonio.fsync_path(Path(dirpath) / name)
        jsonio.fsync_path(Path(dirpath))


def _swap_in(new: Path, out_dir: Path) -> None:
    """Make ``new`` be ``out_dir`` in one step; the old site is then removed."""
    if not out_dir.exists():
        os.rename(new, out_dir)
        jsonio.fsync_dir(out_dir.parent)
        return
    if _exchange(new, out_dir):
        shutil.rmtree(new)  # now holds the previous site
    else:  # no renameat2: a moment without OUT_DIR, never a mix of two sites
        old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=".old",
                                    dir=out_dir.parent))
        os.rename(out_dir, old / "site")
        os.rename(new, out_dir)
        shutil.rmtree(old)
    jsonio.fsync_dir(out_dir.parent)


def _exchange(a: Path, b: Path) -> bool:
    """``renameat2(RENAME_EXCHANGE)``: swap two paths atomically (Linux ≥ 3.15)."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
        fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                       ctypes.c_uint]
        at_fdcwd, rename_exchange = -100, 2
        if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
            return True
    return False
