"""STAC 1.1 records of promoted versions: the root catalog, one collection per family, one
item per version.

Rendering is pure: :func:`render_stac` returns bytes keyed by root-relative path and writes
nothing, so the promotion can stage them with its other files and commit them in one
atomic step. Every object is validated offline (:func:`validate_stac`) before it is
returned; the schemas are pystac's bundled core schemas plus the extension schemas that
ship in ``kfm_prov/schemas/stac/``. Nothing here opens a socket.

Hrefs are relative, self links included (``./<file name>``), so the catalog stays valid
wherever the lake is copied or served. Output is a pure function of the release and the
existing bytes: no wall clock, sorted keys, one trailing newline.
"""

from __future__ import annotations

import functools
import hashlib
import json
import math
import posixpath
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pystac
from pystac.extensions.file import FileExtension
from pystac.extensions.version import VersionExtension, VersionRelType
from pystac.utils import datetime_to_str

from kfm_prov.core import jsonio
from kfm_prov.core.geojson import is_geojson, read_geojson_bbox
from kfm_prov.core.paths import check_name, check_normalized
from kfm_prov.core.validation import shipped_schema
from kfm_prov.errors import CheckFailed, InputError
from kfm_prov.store.published import STAC_DIR, catalog_path, collection_path, item_id, item_path
from kfm_prov.store.release import Release, ReleaseFile

if TYPE_CHECKING:
    from kfm_prov.publish.dcat import Extent

CATALOG_PATH = f"{STAC_DIR}/catalog.json"
CATALOG_ID = "kfm"

#: Link relation of the PROV bundle (PROV-AQ's ``has_provenance``, as SPEC §7 asks).
PROVENANCE_REL = "http://www.w3.org/ns/prov#has_provenance"
#: Link relation of the reconstructibility certificate. No registered IANA or STAC
#: relation says "attestation that this can be rebuilt" (``describedby`` is too vague to
#: look up by), so this is our own, stable across lakes whatever their PROV namespace.
CERTIFICATE_REL = "kfm:certificate"
DERIVED_FROM_REL = "derived_from"

FILE_SCHEMA = "https://stac-extensions.github.io/file/v2.1.0/schema.json"
PROCESSING_SCHEMA = "https://stac-extensions.github.io/processing/v1.2.0/schema.json"
VERSION_SCHEMA = "https://stac-extensions.github.io/version/v1.2.0/schema.json"
PROJECTION_SCHEMA = "https://stac-extensions.github.io/projection/v2.0.0/schema.json"
_VENDORED = ("file", "processing", "projection", "version")

GEOJSON = "application/geo+json"
_JSON = "application/json"
_GLOBAL_BBOX = [-180.0, -90.0, 180.0, 90.0]
_OPEN_INTERVAL: list[list[datetime | None]] = [[None, None]]  # replaced before writing
_SHA256 = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
_MULTIHASH_SHA256 = re.compile(r"^1220[0-9a-f]{64}$")
_STAC_LICENSE = re.compile(r"^[\w\-\.\+]+$")


# ---------------------------------------------------------------------------------------
# paths and ids


def existing_stac_files(root: Path, family: str, stac_dir: str = STAC_DIR) -> dict[str, bytes]:
    """Read what :func:`render_stac` needs as ``existing``: the catalog, the family's
    collection and every item that collection links. Reads only; missing files are left
    out (they do not exist yet)."""
    out: dict[str, bytes] = {}
    check_name(family, "family")
    coll_rel = collection_path(family, stac_dir)
    for rel in (catalog_path(stac_dir), coll_rel):
        if (root / rel).is_file():
            out[rel] = (root / rel).read_bytes()
    coll = out.get(coll_rel)
    if coll is None:
        return out
    data = _load_json(coll, coll_rel)
    if not isinstance(data, dict):
        raise InputError("not a STAC collection", file=coll_rel)
    for rel in _item_link_paths(data, coll_rel, stac_dir):
        target = root / rel
        if target.is_file() and target.resolve().is_relative_to(root.resolve()):
            out[rel] = target.read_bytes()
    return out


# ---------------------------------------------------------------------------------------
# rendering


def render_stac(release: Release, *, existing: Mapping[str, bytes], root: Path) -> dict[str, bytes]:
    """Render the catalog, the family's collection and the new item.

    ``existing`` maps root-relative paths to the current bytes of the catalog, the
    collection and every item the collection links (see :func:`existing_stac_files`); a
    missing key means the file does not exist yet. The collection's extent and license are
    recomputed from all its items, so an item it links but ``existing`` lacks is an error.
    ``root`` is only read from: GeoJSON products are read at ``root / file.path`` (already
    in place when the promotion calls this) for their bbox and geometry, and checked
    against the release's size and digest. Returns root-relative path -> bytes; writes
    nothing.
    """
    _check_release(release)
    family = release.family
    coll_rel = collection_path(family, release.stac_dir)
    item_rel = item_path(family, release.version, release.stac_dir)

    new_item = _build_item(release, root)
    new_summary = _summarize_item(new_item, item_rel)

    coll_data = None
    if coll_rel in existing:
        coll_data = _load_json(existing[coll_rel], coll_rel)
        if not isinstance(coll_data, dict) or coll_data.get("type") != "Collection":
            raise InputError("not a STAC collection", file=coll_rel, field="type")
    summaries = [new_summary]
    item_links: list[str] = []
    older: dict[str, dict[str, Any]] = {}
    if coll_data is not None:
        for rel in _item_link_paths(coll_data, coll_rel, release.stac_dir):
            item_links.append(rel)
            if rel == item_rel:
                continue  # this version's item is being (re)rendered
            if rel not in existing:
                raise InputError(
                    f"collection '{family}' links item {rel} but its bytes were not given",
                    file=coll_rel,
                    hint="pass every linked item in existing (see existing_stac_files)",
                )
            data = _load_json(existing[rel], rel)
            summaries.append(_summarize_item(data, rel))
            older[rel] = data
    if release.predecessor_version is not None:
        pred = item_path(family, release.predecessor_version, release.stac_dir)
        if pred not in item_links:
            raise InputError(
                f"predecessor version {release.predecessor_version} of {family} has no "
                "STAC item in the collection",
                file=coll_rel,
                field="predecessor_version",
            )

    collection = _build_collection(release, coll_data, summaries)
    cat_rel = catalog_path(release.stac_dir)
    catalog = _build_catalog(release, existing.get(cat_rel), collection)

    out: dict[str, bytes] = {}
    for rel, obj in ((cat_rel, catalog), (coll_rel, collection), (item_rel, new_item)):
        validate_stac(obj, path=rel)
        out[rel] = _dump(obj)
    # Earlier items gain only links of a fixed, valid form. Re-validating each against the
    # schemas would make a promotion cost O(versions) schema runs; `verify` validates
    # every published STAC file.
    pred_rel = (item_path(family, release.predecessor_version, release.stac_dir)
                if release.predecessor_version is not None else None)
    for rel in sorted(older):
        updated = _link_newer(older[rel], rel, item_rel, release, successor=rel == pred_rel)
        if updated != older[rel]:
            out[rel] = _dump(updated)
    return out


def collection_extent(data: bytes) -> Extent:
    """The DCAT view of a rendered collection's extent: its overall bbox (None when it is
    the whole globe, i.e. unknown) and its overall time span."""
    from kfm_prov.publish.dcat import Extent

    coll = _load_json(data, "collection.json")
    try:
        box = coll["extent"]["spatial"]["bbox"][0]
        start, end = coll["extent"]["temporal"]["interval"][0]
    except (KeyError, IndexError, TypeError, ValueError) as exc:
        raise InputError("STAC collection has no extent", field="extent") from exc
    half = len(box) // 2
    bbox = [box[0], box[1], box[half], box[half + 1]]
    return Extent(None if bbox == _GLOBAL_BBOX else tuple(bbox), (start, end))


def _link_newer(item: dict[str, Any], rel: str, latest_rel: str, release: Release, *,
                successor: bool) -> dict[str, Any]:
    """An older item with its ``latest-version`` link (and, for the predecessor, its
    ``successor-version`` link) pointing at the new version; other links kept as they are.
    Returns a new dict; ``item`` is not changed."""
    links = item.get("links")
    if not isinstance(links, list):
        raise InputError("malformed links", file=rel, field="links")
    title = f"{release.family} {release.version}"
    href = _href(latest_rel, posixpath.dirname(rel))
    kept = [lk for lk in links
            if not (isinstance(lk, dict) and lk.get("rel") in (
                VersionRelType.LATEST, *((VersionRelType.SUCCESSOR,) if successor else ())))]
    kept.append({"rel": VersionRelType.LATEST, "href": href, "type": GEOJSON, "title": title})
    if successor:
        kept.append({"rel": VersionRelType.SUCCESSOR, "href": href, "type": GEOJSON,
                     "title": title})
    return {**item, "links": kept}


def _build_item(release: Release, root: Path) -> dict[str, Any]:
    item_rel = item_path(release.family, release.version, release.stac_dir)
    item_dir = posixpath.dirname(item_rel)
    bbox, geometry = _product_extent(release, root)
    license_id, license_links = _stac_license(release.license)

    properties: dict[str, Any] = {
        "kfm:run_id": release.run_id,
        "kfm:spec_hash": release.spec_hash,
        "kfm:pipeline_id": release.pipeline_id,
        "kfm:git_commit": release.git_commit,
        "kfm:sensitivity": release.sensitivity,
        "license": license_id,
        "processing:datetime": _stac_time(release.run_ended_at, "run_ended_at"),
        "created": _stac_time(release.promoted_at, "promoted_at"),
    }
    if release.software:
        properties["processing:software"] = dict(sorted(release.software.items()))
    if release.lineage:
        properties["processing:lineage"] = release.lineage
    if release.attribution:
        properties["providers"] = [{"name": release.attribution, "roles": ["licensor"]}]
    if release.title:
        properties["title"] = release.title
    if release.description:
        properties["description"] = release.description
    if release.dropped:
        properties["kfm:dropped"] = sorted(release.dropped)

    item = pystac.Item(
        id=item_id(release.family, release.version),
        geometry=geometry,
        bbox=bbox,
        datetime=_utc(release.run_ended_at, "run_ended_at"),  # within start..end
        start_datetime=_utc(release.run_started_at, "run_started_at"),
        end_datetime=_utc(release.run_ended_at, "run_ended_at"),
        properties=properties,
        collection=release.family,
    )
    for key, rf in _asset_keys(release):
        asset = pystac.Asset(
            href=_href(rf.path, item_dir), media_type=rf.media_type, roles=[rf.role]
        )
        item.add_asset(key, asset)
        fext = FileExtension.ext(asset, add_if_missing=True)
        fext.checksum = "1220" + _sha256_hex(rf.digest, rf.path)
        fext.size = rf.size
        if rf.carried_from is not None:  # lineage of its first promotion, not this run's
            asset.extra_fields["kfm:carried_from"] = {
                "version": rf.carried_from.version, "run_id": rf.carried_from.run_id}
    VersionExtension.ext(item, add_if_missing=True).apply(version=release.version)

    def link(rel: str, target: str, media_type: str, title: str | None = None) -> None:
        item.add_link(pystac.Link(rel, _href(target, item_dir), media_type, title=title))

    coll_title = release.title or release.metadata.title or release.family
    link("root", catalog_path(release.stac_dir), _JSON, release.catalog.title)
    link("parent", collection_path(release.family, release.stac_dir), _JSON, coll_title)
    link("collection", collection_path(release.family, release.stac_dir), _JSON, coll_title)
    if release.predecessor_version is not None:
        link(
            VersionRelType.PREDECESSOR,
            item_path(release.family, release.predecessor_version, release.stac_dir),
            GEOJSON,
            f"{release.family} {release.predecessor_version}",
        )
    link(PROVENANCE_REL, release.prov_bundle_path, _JSON, "PROV bundle")
    link(CERTIFICATE_REL, release.certificate_path, _JSON, "Reconstructibility certificate")
    for derived in dict.fromkeys(release.derived_from_items):
        link(DERIVED_FROM_REL, derived, GEOJSON)
    for lic in license_links:
        item.add_link(lic)

    item.stac_extensions = sorted({*item.stac_extensions, PROCESSING_SCHEMA})
    return _with_self(item.to_dict(include_self_link=False, transform_hrefs=False),
                      "./" + posixpath.basename(item_rel), GEOJSON)


def _build_collection(
    release: Release, existing: dict[str, Any] | None, summaries: list[_ItemSummary]
) -> dict[str, Any]:
    family = release.family
    coll_rel = collection_path(family, release.stac_dir)
    coll_dir = posixpath.dirname(coll_rel)
    if existing is None:
        collection = pystac.Collection(
            id=family,
            description=f"Promoted versions of {family}.",
            extent=pystac.Extent(
                pystac.SpatialExtent([_GLOBAL_BBOX]), pystac.TemporalExtent(_OPEN_INTERVAL)
            ),
            title=release.title,
            license="other",
        )
    else:
        if existing.get("id") != family:
            raise InputError(
                f"collection id {existing.get('id')!r} is not the family {family!r}",
                file=coll_rel,
                field="id",
            )
        collection = _from_dict(pystac.Collection, existing, coll_rel)
    # The config describes the family: its values win at every promotion.
    meta = release.metadata
    title = release.title or meta.title
    if title:
        collection.title = title
    description = release.description or meta.description
    if description:
        collection.description = description
    if meta.keywords:
        collection.keywords = list(meta.keywords)

    boxes = [s.bbox for s in summaries if s.bbox is not None]
    if meta.bbox is not None:  # the configured coverage, widened to every item's bbox
        boxes.append(list(meta.bbox))
    spatial = [_union(boxes)] if boxes else [_GLOBAL_BBOX]
    starts = sorted(s.start for s in summaries)
    ends = sorted(s.end for s in summaries)
    collection.extent = pystac.Extent(
        pystac.SpatialExtent(spatial), pystac.TemporalExtent([[starts[0], ends[-1]]])
    )
    collection.summaries = pystac.Summaries({
        "kfm:sensitivity": sorted({s.sensitivity for s in summaries if s.sensitivity}),
        "kfm:pipeline_id": sorted({s.pipeline for s in summaries if s.pipeline}),
        "version": [s.version for s in sorted(summaries, key=lambda s: (s.start, s.version))
                    if s.version],
    })
    licenses = sorted({s.license for s in summaries if s.license})
    collection.license = licenses[0] if len(licenses) == 1 else "other"
    providers: dict[str, dict[str, Any]] = {}
    if meta.publisher is not None:
        host: dict[str, Any] = {"name": meta.publisher.name, "roles": ["host"]}
        if meta.publisher.url:
            host["url"] = meta.publisher.url
        providers[json.dumps(host, sort_keys=True)] = host
    for s in summaries:
        for p in s.providers:
            providers.setdefault(json.dumps(p, sort_keys=True), p)
    collection.providers = [
        pystac.Provider.from_dict(providers[k]) for k in sorted(providers)
    ] or None

    managed = {"self", "root", "parent", "license"}
    kept = [lk for lk in collection.links if lk.rel not in managed]
    new_item = item_path(family, release.version, release.stac_dir)
    if new_item not in _item_link_paths(
        {"links": [lk.to_dict(transform_href=False) for lk in kept]}, coll_rel
    ):
        kept.append(
            pystac.Link(
                "item",
                _href(new_item, coll_dir),
                GEOJSON,
                title=f"{family} {release.version}",
            )
        )
    license_links: list[pystac.Link] = []
    if collection.license == "other":
        # "other" must point somewhere: every license link of the items, and the SPDX
        # page of every item that carries a plain SPDX id.
        by_href: dict[str, dict[str, Any]] = {}
        for s in summaries:
            if s.license and s.license != "other" and not s.license.startswith("LicenseRef-"):
                href = f"https://spdx.org/licenses/{s.license}.html"
                by_href.setdefault(
                    href, {"rel": "license", "href": href, "type": "text/html", "title": s.license}
                )
            for lic in s.license_links:
                by_href.setdefault(lic["href"], lic)
        license_links = [pystac.Link.from_dict(by_href[h]) for h in sorted(by_href)]
    cat_href = _href(catalog_path(release.stac_dir), coll_dir)
    collection.links = [
        pystac.Link("root", cat_href, _JSON, title=release.catalog.title),
        pystac.Link("parent", cat_href, _JSON, title=release.catalog.title),
        *kept,
        *license_links,
    ]
    return _with_self(collection.to_dict(include_self_link=False, transform_hrefs=False),
                      "./collection.json", _JSON)


def _build_catalog(
    release: Release, existing: bytes | None, collection: dict[str, Any]
) -> dict[str, Any]:
    if existing is None:
        catalog = pystac.Catalog(
            id=CATALOG_ID,
            description=release.catalog.description,
            title=release.catalog.title,
        )
    else:
        cat_rel = catalog_path(release.stac_dir)
        catalog = _from_dict(pystac.Catalog, _load_json(existing, cat_rel), cat_rel)
    coll_rel = collection_path(release.family, release.stac_dir)
    kept = [lk for lk in catalog.links if lk.rel not in ("self", "root")]
    children = {
        _resolve(href, release.stac_dir, release.stac_dir)
        for lk in kept
        if lk.rel == "child" and (href := lk.get_href(transform_href=False))
    }
    if coll_rel not in children:
        kept.append(
            pystac.Link(
                "child",
                _href(coll_rel, release.stac_dir),
                _JSON,
                title=collection.get("title") or release.family,
            )
        )
    catalog.links = [
        pystac.Link("root", "./catalog.json", _JSON, title=catalog.title),
        *kept,
    ]
    return _with_self(catalog.to_dict(include_self_link=False, transform_hrefs=False),
                      "./catalog.json", _JSON)


def _with_self(obj: dict[str, Any], href: str, media_type: str) -> dict[str, Any]:
    """The object with a relative ``self`` link first. pystac drops self links from a
    dict unless they are absolute; ours is relative, so the catalog stays valid wherever
    it is copied or served."""
    links = [lk for lk in obj.get("links", []) if lk.get("rel") != "self"]
    obj["links"] = [{"rel": "self", "href": href, "type": media_type}, *links]
    return obj


# ---------------------------------------------------------------------------------------
# what a collection needs from each of its items


@dataclass(frozen=True)
class _ItemSummary:
    """The few fields of an item that the collection aggregates."""

    bbox: list[float] | None
    start: datetime
    end: datetime
    license: str | None
    providers: list[dict[str, Any]]
    license_links: list[dict[str, Any]]
    sensitivity: str | None = None
    pipeline: str | None = None
    version: str | None = None


def _summarize_item(item: Any, rel: str) -> _ItemSummary:
    if not isinstance(item, dict) or item.get("type") != "Feature":
        raise InputError("not a STAC item", file=rel, field="type")
    props = item.get("properties")
    if not isinstance(props, dict):
        raise InputError("STAC item has no properties", file=rel, field="properties")
    bbox = item.get("bbox")
    box: list[float] | None = None
    if bbox is not None:
        if (
            not isinstance(bbox, list)
            or len(bbox) not in (4, 6)
            or not all(_is_number(v) for v in bbox)
        ):
            raise InputError("STAC item has a malformed bbox", file=rel, field="bbox")
        half = len(bbox) // 2
        box = [bbox[0], bbox[1], bbox[half], bbox[half + 1]]
    when = props.get("datetime") or props.get("start_datetime")
    if not isinstance(when, str):
        raise InputError("STAC item has no datetime", file=rel, field="properties/datetime")
    start = props.get("start_datetime") or when
    end = props.get("end_datetime") or when
    if not isinstance(start, str) or not isinstance(end, str):
        raise InputError("STAC item has a malformed time range", file=rel,
                         field="properties/start_datetime")
    license_ = props.get("license")
    providers = props.get("providers") or []
    if not isinstance(providers, list) or not all(isinstance(p, dict) for p in providers):
        raise InputError("malformed providers", file=rel, field="properties/providers")
    links = item.get("links") or []
    if not isinstance(links, list):
        raise InputError("malformed links", file=rel, field="links")
    license_links = [
        lk
        for lk in links
        if isinstance(lk, dict) and lk.get("rel") == "license" and isinstance(lk.get("href"), str)
    ]
    def text(key: str) -> str | None:
        value = props.get(key)
        return value if isinstance(value, str) else None

    return _ItemSummary(
        box,
        _utc(start, "properties/start_datetime", file=rel),
        _utc(end, "properties/end_datetime", file=rel),
        license_ if isinstance(license_, str) else None,
        providers,
        license_links,
        text("kfm:sensitivity"),
        text("kfm:pipeline_id"),
        text("version"),
    )


def _item_link_paths(collection: Mapping[str, Any], coll_rel: str,
                     stac_dir: str = STAC_DIR) -> list[str]:
    """Root-relative paths of a collection's item links, in link order."""
    links = collection.get("links", [])
    if not isinstance(links, list):
        raise InputError("malformed links", file=coll_rel, field="links")
    out: list[str] = []
    for i, lk in enumerate(links):
        if not isinstance(lk, dict) or not isinstance(lk.get("href"), str):
            raise InputError("malformed link", file=coll_rel, field=f"links/{i}")
        if lk.get("rel") == "item":
            rel = _resolve(lk["href"], posixpath.dirname(coll_rel), stac_dir)
            if rel is None:
                raise InputError(
                    f"item link {lk['href']!r} is not a relative path inside {stac_dir}",
                    file=coll_rel,
                    field=f"links/{i}",
                )
            if rel not in out:
                out.append(rel)
    return out


def _resolve(href: str, base_dir: str, stac_dir: str = STAC_DIR) -> str | None:
    """Root-relative path of a relative href, or None if it is absolute or escapes."""
    if "://" in href or href.startswith("/") or "\\" in href:
        return None
    rel = posixpath.normpath(posixpath.join(base_dir, href))
    if not rel.startswith(stac_dir + "/"):
        return None
    return rel


# ---------------------------------------------------------------------------------------
# products


def _asset_keys(release: Release) -> Iterator[tuple[str, ReleaseFile]]:
    """Asset key = the file's path inside the version directory (its name, usually)."""
    prefix = f"{release.processed_dir}/{release.family}/{release.version}/"
    seen: set[str] = set()
    for rf in release.files:
        key = rf.path[len(prefix) :] if rf.path.startswith(prefix) else posixpath.basename(rf.path)
        if key in seen:
            raise InputError(f"two promoted files share the asset key {key!r}", file=rf.path)
        seen.add(key)
        yield key, rf


def _product_extent(
    release: Release, root: Path
) -> tuple[list[float] | None, dict[str, Any] | None]:
    """Bbox over every coordinate of every GeoJSON product (else the family's configured
    ``bbox``, else none); the bbox polygon as geometry.

    A convex hull would be tighter; the bbox polygon is what STAC search needs. Products
    that cross the antimeridian get a bbox spanning the whole longitude range in between.
    """
    boxes: list[list[float]] = []
    for rf in release.files:
        if not is_geojson(rf.media_type):
            continue
        data = _read_product(rf, root)
        box = read_geojson_bbox(data, rf.path)
        if box is not None:
            boxes.append(box)
    if not boxes and release.metadata.bbox is not None:
        boxes.append(list(release.metadata.bbox))  # no geometry: the configured coverage
    if not boxes:
        return None, None
    minx, miny, maxx, maxy = _union(boxes)
    if minx == maxx and miny == maxy:
        return [minx, miny, maxx, maxy], {"type": "Point", "coordinates": [minx, miny]}
    ring = [[minx, miny], [maxx, miny], [maxx, maxy], [minx, maxy], [minx, miny]]
    return [minx, miny, maxx, maxy], {"type": "Polygon", "coordinates": [ring]}


def _read_product(rf: ReleaseFile, root: Path) -> bytes:
    path = root / rf.path
    try:
        if not path.resolve().is_relative_to(root.resolve()):
            raise InputError("promoted file resolves outside the root", file=rf.path)
        data = path.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read promoted file: {exc.strerror}", file=rf.path) from exc
    if len(data) != rf.size:
        raise CheckFailed(
            f"promoted file has {len(data)} bytes, the release records {rf.size}",
            file=rf.path,
            field="size",
        )
    if hashlib.sha256(data).hexdigest() != _sha256_hex(rf.digest, rf.path):
        raise CheckFailed(
            "promoted file does not match its recorded digest", file=rf.path, field="digest"
        )
    return data


# ---------------------------------------------------------------------------------------
# validation


def validate_stac(obj: Mapping[str, Any], *, path: str | None = None) -> None:
    """Validate a STAC 1.1 catalog, collection or item dict, offline.

    Core schemas come from pystac's bundle, extension schemas from ``schemas/stac/``; a
    ``$ref`` to anything else fails instead of being fetched. On top of the schemas, the
    kfm profile: lowercase item ids without ``:`` or ``/``, and ``file:checksum`` in the
    sha2-256 multihash form ``1220`` + 64 hex. Raises :class:`InputError` naming the object
    (``path`` if given) and the failing field; returns None when it holds.
    """
    import jsonschema
    import referencing.exceptions

    kind = {"Feature": "item", "Collection": "collection", "Catalog": "catalog"}.get(
        str(obj.get("type"))
    )
    oid = obj.get("id")
    label = f"STAC {kind or 'object'} {oid!r}"
    if kind is None:
        raise InputError(
            f"{label} has an unknown type {obj.get('type')!r}", file=path, field="type"
        )
    version = obj.get("stac_version")
    core = f"https://schemas.stacspec.org/v{version}/{kind}-spec/json-schema/{kind}.json"
    registry, schemas = _schema_registry()
    if core not in schemas:
        raise InputError(
            f"{label}: STAC version {version!r} has no bundled schema",
            file=path,
            field="stac_version",
        )
    extensions = obj.get("stac_extensions", [])
    if not isinstance(extensions, list):
        raise InputError(
            f"{label}: stac_extensions is not a list", file=path, field="stac_extensions"
        )
    instance = json.loads(json.dumps(obj))  # tuples -> lists, as the schemas expect
    for uri in [core, *extensions]:
        schema = schemas.get(uri)
        if schema is None:
            raise InputError(
                f"{label}: no offline schema for extension {uri}",
                file=path,
                field="stac_extensions",
                hint="vendor it under kfm_prov/schemas/stac/ or drop the extension",
            )
        cls = jsonschema.validators.validator_for(schema)
        try:
            errors = list(cls(schema, registry=registry).iter_errors(instance))
        except referencing.exceptions.Unresolvable as exc:
            raise InputError(
                f"{label}: schema {uri} refers to {getattr(exc, 'ref', exc)}, which is not "
                "available offline",
                file=path,
            ) from exc
        if errors:
            best = jsonschema.exceptions.best_match(errors)
            while best.context:
                best = jsonschema.exceptions.best_match(best.context)
            where = "/" + "/".join(str(p) for p in best.absolute_path)
            raise InputError(
                f"{label} does not validate against {uri}: {best.message}",
                file=path,
                field=where,
            )
    if kind == "item" and isinstance(oid, str) and (oid != oid.lower() or ":" in oid or "/" in oid):
        raise InputError(
            f"{label}: item ids are lowercase without ':' or '/'", file=path, field="id"
        )
    assets = obj.get("assets") or {}
    for key, asset in assets.items() if isinstance(assets, dict) else ():
        checksum = asset.get("file:checksum") if isinstance(asset, dict) else None
        if checksum is not None and not _MULTIHASH_SHA256.match(str(checksum)):
            raise InputError(
                f"{label}: file:checksum of asset {key!r} is not a sha2-256 multihash "
                "('1220' + 64 hex)",
                file=path,
                field=f"/assets/{key}/file:checksum",
            )


@functools.cache
def _schema_registry() -> tuple[Any, dict[str, dict[str, Any]]]:
    """pystac's bundled core schemas plus ours, in a registry that never retrieves.

    Built on first use (not at import) and cached; nothing global in pystac is touched.
    """
    from pystac.validation import JsonSchemaSTACValidator
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT7

    schemas: dict[str, dict[str, Any]] = dict(JsonSchemaSTACValidator().schema_cache)
    for name in _VENDORED:
        schema = shipped_schema("stac", f"{name}.schema.json")
        schemas[str(schema["$id"]).rstrip("#")] = schema
    registry: Any = Registry().with_resources(
        (uri, Resource.from_contents(s, default_specification=DRAFT7)) for uri, s in schemas.items()
    )
    return registry.crawl(), schemas


# ---------------------------------------------------------------------------------------
# small helpers


def _check_release(release: Release) -> None:
    check_name(release.family, "family")
    check_name(release.version, "version")
    if release.predecessor_version is not None:
        check_name(release.predecessor_version, "predecessor_version")
        if item_id(release.family, release.predecessor_version) == item_id(
            release.family, release.version
        ):
            raise InputError("a version cannot be its own predecessor", field="predecessor_version")
    if not release.files:
        raise InputError(f"release {release.family} {release.version} has no files", field="files")
    for rf in release.files:
        check_normalized(rf.path, field="files/path")
        _sha256_hex(rf.digest, rf.path)
        if isinstance(rf.size, bool) or not isinstance(rf.size, int) or rf.size < 0:
            raise InputError(f"bad size {rf.size!r}", file=rf.path, field="size")
        if not re.match(r"^[\w.+-]+/[\w.+-]+(\s*;.*)?$", rf.media_type):
            raise InputError(f"bad media type {rf.media_type!r}", file=rf.path, field="media_type")
        if not rf.role or not isinstance(rf.role, str):
            raise InputError("empty role", file=rf.path, field="role")
    check_normalized(release.prov_bundle_path, field="prov_bundle_path")
    check_normalized(release.certificate_path, field="certificate_path")
    for p in release.derived_from_items:
        check_normalized(p, field="derived_from_items")
    start = _utc(release.run_started_at, "run_started_at")
    end = _utc(release.run_ended_at, "run_ended_at")
    _utc(release.promoted_at, "promoted_at")
    if start > end:
        raise InputError("the run ends before it starts", field="run_ended_at")
    _stac_license(release.license)


def _sha256_hex(digest: str, path: str) -> str:
    m = _SHA256.match(digest) if isinstance(digest, str) else None
    if m is None:
        raise InputError(
            f"digest {digest!r} is not 'sha256:' + 64 lowercase hex", file=path, field="digest"
        )
    return m.group(1)


def _stac_license(value: str) -> tuple[str, list[pystac.Link]]:
    """STAC ``license`` and license links: an SPDX id as is; an SPDX expression (it has
    spaces, which the STAC pattern rejects) becomes ``other`` plus one link per id."""
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    if value == "other":
        return "other", []
    try:
        canonical = canonicalize_license_expression(value)
    except InvalidLicenseExpression as exc:
        raise InputError(f"license {value!r} is not an SPDX id: {exc}", field="license") from exc
    if _STAC_LICENSE.match(canonical):
        return canonical, []
    ids = sorted(
        {
            t
            for t in re.split(r"[\s()]+", canonical)
            if t and t not in ("AND", "OR", "WITH") and not t.startswith("LicenseRef-")
        }
    )
    links = [
        pystac.Link(
            "license",
            f"https://spdx.org/licenses/{i}.html",
            "text/html",
            title=f"{i} (part of {canonical})",
        )
        for i in ids
    ]
    return "other", links


def _utc(value: str, field: str, *, file: str | None = None) -> datetime:
    """An RFC 3339 time with a zone, as UTC; naive times are refused, not guessed."""
    try:
        parsed = datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InputError(f"{value!r} is not an RFC 3339 time with a zone", file=file, field=field)
    return parsed.astimezone(UTC)


def _stac_time(value: str, field: str) -> str:
    return datetime_to_str(_utc(value, field))


def _href(target: str, base_dir: str) -> str:
    """Relative href from a directory to a root-relative path, ``./`` for ones below it."""
    rel = posixpath.relpath(target, base_dir)
    return rel if rel.startswith("../") else "./" + rel


def _bare_media_type(media_type: str) -> str:
    return media_type.split(";", 1)[0].strip().lower()


def _union(boxes: list[list[float]]) -> list[float]:
    return [
        min(b[0] for b in boxes),
        min(b[1] for b in boxes),
        max(b[2] for b in boxes),
        max(b[3] for b in boxes),
    ]


def _is_number(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _load_json(data: bytes, path: str, *, what: str = "JSON") -> Any:
    """Strict JSON (``jsonio.loads``); errors name the file and what it should have been."""
    try:
        return jsonio.loads(data, file=path)
    except InputError as exc:
        raise InputError(exc.message.replace("JSON", what, 1), file=path,
                         field=exc.field) from None


def _from_dict(cls: Any, data: Any, path: str) -> Any:
    """pystac's from_dict, with its assorted exceptions turned into an InputError."""
    if not isinstance(data, dict):
        raise InputError("not a JSON object", file=path)
    try:
        return cls.from_dict(data, migrate=False, preserve_dict=True)
    except (
        pystac.STACError,
        pystac.STACTypeError,
        KeyError,
        TypeError,
        ValueError,
        AttributeError,
    ) as exc:
        raise InputError(f"malformed STAC {cls.__name__.lower()}: {exc}", file=path) from exc


def _dump(obj: Mapping[str, Any]) -> bytes:
    return (json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode("utf-8")
