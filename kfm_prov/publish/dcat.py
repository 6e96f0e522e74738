"""DCAT records of promoted versions: one ``dcat:Dataset`` per family, one
``dcat:Distribution`` per promoted file, in ``data/catalog/dcat/<family>.ttl``.

Rendering is pure (bytes in, bytes out) so the promotion can stage the file with the rest
of a version and commit them together. The Turtle is byte-stable: every node is an IRI
derived from the release (no blank nodes, whose labels rdflib draws at random), and
rdflib's Turtle writer sorts subjects, predicates and objects.

IRIs, all under the lake's PROV namespace ``ns``:
- dataset ``ns + "dataset/" + family``
- distribution ``ns + "distribution/" + family + "/" + version + "/" + name``
- its checksum ``ns + "checksum/" + family + "/" + version + "/" + name`` (a path, not a
  ``#checksum`` fragment, so a namespace that ends in ``#`` still gives valid IRIs)
- access/download URL ``base_url + path`` if a base URL is given, else ``ns + path``: RDF
  has no relative IRIs once parsed, and a ``file:`` IRI would leak the machine's layout, so
  without a base URL the file is named in the lake's own namespace.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from rdflib import RDF, XSD, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS

from kfm_prov.core.paths import check_name, check_normalized
from kfm_prov.errors import InputError
from kfm_prov.store.release import Release

#: DCAT (the namespace IRI is the same for DCAT 2 and 3; rdflib's ``DCAT`` object is a
#: closed DCAT 2 term list that warns on DCAT 3 terms such as ``dcat:version``).
DCAT = Namespace("http://www.w3.org/ns/dcat#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
PROV = Namespace("http://www.w3.org/ns/prov#")
SPDX_LICENSES = "http://spdx.org/licenses/"
IANA_MEDIA_TYPES = "https://www.iana.org/assignments/media-types/"

_SHA256 = re.compile(r"^(?:sha256:)?([0-9a-f]{64})$")
_MEDIA_TYPE = re.compile(r"^([\w.+-]+/[\w.+-]+)\s*(?:;.*)?$")
# Characters RFC 3987 forbids in an IRI; an IRI part holding one is refused, not escaped,
# because the same id must match the PROV documents written elsewhere.
_IRI_BAD = re.compile(r'[\s<>"{}|\\^`\x00-\x1f]')


def dcat_path(family: str, dcat_dir: str = "data/catalog/dcat") -> str:
    """Root-relative path of a family's DCAT file (``dcat_dir`` is the configured folder)."""
    return f"{dcat_dir}/{family}.ttl"


def dataset_iri(namespace: str, family: str) -> URIRef:
    """The family's dataset: stable across versions."""
    return URIRef(f"{namespace}dataset/{_seg(family)}")


def distribution_iri(namespace: str, family: str, version: str, name: str) -> URIRef:
    """One promoted file of one version."""
    return URIRef(f"{namespace}distribution/{_seg(family)}/{_seg(version)}/{_seg(name)}")


def render_dcat(release: Release, *, existing: bytes | None, base_url: str | None = None) -> bytes:
    """Add the release's distributions to the family's DCAT Turtle and return it.

    ``existing`` is the current Turtle (earlier versions) or None. The dataset's title,
    identifier, license and rights holder are written when the dataset first appears and
    left alone after; its ``dct:modified`` follows the newest distribution. This version's
    distributions are replaced wholesale, so rendering the same release twice adds nothing.
    Writes nothing to disk.
    """
    ns = _check_namespace(release.namespace)
    check_name(release.family, "family")
    check_name(release.version, "version")
    if _IRI_BAD.search(release.promotion_id) or not release.promotion_id:
        raise InputError(
            f"promotion id {release.promotion_id!r} cannot be part of an IRI",
            field="promotion_id",
        )
    if not release.files:
        raise InputError(f"release {release.family} {release.version} has no files", field="files")
    base = _check_base_url(base_url) if base_url is not None else ns
    license_iri, rights = _license(release.license)
    target = dcat_path(release.family)

    graph = Graph(bind_namespaces="none")
    for prefix, iri in (
        ("dcat", DCAT),
        ("dct", DCTERMS),
        ("prov", PROV),
        ("spdx", SPDX),
        ("xsd", XSD),
    ):
        graph.bind(prefix, iri)
    if existing is not None:
        graph += _parse(existing, target)

    dataset = dataset_iri(ns, release.family)
    if (dataset, RDF.type, DCAT.Dataset) not in graph:
        graph.add((dataset, RDF.type, DCAT.Dataset))
        graph.add((dataset, DCTERMS.identifier, Literal(release.family)))
        graph.add((dataset, DCTERMS.title, Literal(release.title or release.family)))
        if release.description:
            graph.add((dataset, DCTERMS.description, Literal(release.description)))
        if license_iri is not None:
            graph.add((dataset, DCTERMS.license, license_iri))
        if rights is not None:
            graph.add((dataset, DCTERMS.rights, rights))
        if release.attribution:
            graph.add((dataset, DCTERMS.rightsHolder, Literal(release.attribution)))

    issued = _datetime(release.promoted_at)
    activity = URIRef(ns + release.promotion_id)
    prefix = f"{release.processed_dir}/{release.family}/{release.version}/"
    names: set[str] = set()
    for rf in release.files:
        name = rf.path[len(prefix) :] if rf.path.startswith(prefix) else rf.path.rsplit("/", 1)[-1]
        if not name or name in names:
            raise InputError(f"two promoted files share the name {name!r}", file=rf.path)
        names.add(name)
        check_normalized(rf.path, field="files/path")
        hexdigest = _sha256_hex(rf.digest, rf.path)
        media = _MEDIA_TYPE.match(rf.media_type)
        if media is None:
            raise InputError(f"bad media type {rf.media_type!r}", file=rf.path, field="media_type")
        if isinstance(rf.size, bool) or not isinstance(rf.size, int) or rf.size < 0:
            raise InputError(f"bad size {rf.size!r}", file=rf.path, field="size")

        dist = distribution_iri(ns, release.family, release.version, name)
        checksum = URIRef(
            f"{ns}checksum/{_seg(release.family)}/{_seg(release.version)}/{_seg(name)}"
        )
        graph.remove((dist, None, None))
        graph.remove((checksum, None, None))
        url = URIRef(base + _seg(rf.path))
        for p, o in (
            (RDF.type, DCAT.Distribution),
            (DCTERMS.identifier, Literal(rf.path)),
            (DCTERMS.title, Literal(name)),
            (DCAT.byteSize, Literal(rf.size, datatype=XSD.nonNegativeInteger)),
            (DCAT.mediaType, URIRef(IANA_MEDIA_TYPES + media.group(1).lower())),
            (SPDX.checksum, checksum),
            (DCAT.accessURL, url),
            (DCAT.downloadURL, url),
            (DCAT.version, Literal(release.version)),
            (DCTERMS.issued, issued),
            (PROV.wasGeneratedBy, activity),
        ):
            graph.add((dist, p, o))
        if license_iri is not None:
            graph.add((dist, DCTERMS.license, license_iri))
        if rights is not None:
            graph.add((dist, DCTERMS.rights, rights))
        graph.add((checksum, RDF.type, SPDX.Checksum))
        graph.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
        graph.add((checksum, SPDX.checksumValue, Literal(hexdigest, datatype=XSD.hexBinary)))
        graph.add((dataset, DCAT.distribution, dist))

    times = [
        t
        for d in graph.objects(dataset, DCAT.distribution)
        for t in graph.objects(d, DCTERMS.issued)
        if isinstance(t, Literal)
    ]
    graph.set((dataset, DCTERMS.modified, max(times, key=lambda t: (t.toPython(), str(t)))))
    return graph.serialize(format="turtle", encoding="utf-8")


def _parse(data: bytes, path: str) -> Graph:
    graph = Graph(bind_namespaces="none")
    try:
        graph.parse(data=data.decode("utf-8"), format="turtle")
    except Exception as exc:  # rdflib raises many unrelated types for bad Turtle
        raise InputError(f"malformed Turtle: {exc}".splitlines()[0], file=path) from exc
    return graph


def _license(value: str) -> tuple[URIRef | None, Literal | None]:
    """An SPDX id gives its SPDX IRI; ``other`` or an expression has no single license
    IRI, so it is kept as a ``dct:rights`` statement instead of being misread as one."""
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    if value == "other":
        return None, Literal("other")
    try:
        canonical = canonicalize_license_expression(value)
    except InvalidLicenseExpression as exc:
        raise InputError(f"license {value!r} is not an SPDX id: {exc}", field="license") from exc
    if re.fullmatch(r"[\w.+-]+", canonical) and not canonical.startswith("LicenseRef-"):
        return URIRef(SPDX_LICENSES + canonical), None
    return None, Literal(canonical)


def _datetime(value: str) -> Literal:
    try:
        parsed = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        parsed = None
    if parsed is None or parsed.tzinfo is None:
        raise InputError(f"{value!r} is not an RFC 3339 time with a zone", field="promoted_at")
    return Literal(parsed.astimezone(UTC).isoformat(), datatype=XSD.dateTime)


def _check_namespace(namespace: str) -> str:
    parts = urlsplit(namespace) if isinstance(namespace, str) else None
    if parts is None or not parts.scheme or _IRI_BAD.search(namespace):
        raise InputError(f"namespace {namespace!r} is not an absolute IRI", field="namespace")
    if not namespace.endswith(("/", "#")):
        raise InputError(f"namespace {namespace!r} must end with '/' or '#'", field="namespace")
    return namespace


def _check_base_url(base_url: str) -> str:
    parts = urlsplit(base_url)
    if not parts.scheme or not parts.netloc or _IRI_BAD.search(base_url):
        raise InputError(f"base URL {base_url!r} is not an absolute URL", field="base_url")
    return base_url if base_url.endswith("/") else base_url + "/"


def _sha256_hex(digest: str, path: str) -> str:
    m = _SHA256.match(digest) if isinstance(digest, str) else None
    if m is None:
        raise InputError(
            f"digest {digest!r} is not 'sha256:' + 64 lowercase hex", file=path, field="digest"
        )
    return m.group(1)


def _seg(value: str) -> str:
    """Percent-encode a path for an IRI, keeping '/' between segments."""
    return quote(value, safe="/-._~")
