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

import hashlib
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import quote, urlsplit

from rdflib import RDF, XSD, Graph, Literal, Namespace, URIRef
from rdflib.namespace import DCTERMS, FOAF, RDFS, SKOS

from kfm_prov.config import Agent
from kfm_prov.core.paths import check_name, check_normalized
from kfm_prov.errors import InputError
from kfm_prov.prov.document import version_file_id
from kfm_prov.store.release import Release, ReleaseFile

#: DCAT (the namespace IRI is the same for DCAT 2 and 3; rdflib's ``DCAT`` object is a
#: closed DCAT 2 term list that warns on DCAT 3 terms such as ``dcat:version``).
DCAT = Namespace("http://www.w3.org/ns/dcat#")
SPDX = Namespace("http://spdx.org/rdf/terms#")
PROV = Namespace("http://www.w3.org/ns/prov#")
VCARD = Namespace("http://www.w3.org/2006/vcard/ns#")
GSP = Namespace("http://www.opengis.net/ont/geosparql#")
DCATAP = Namespace("http://data.europa.eu/r5r/")
#: The EU planned-availability concept for data kept as long as the lake: promoted
#: versions are immutable and never removed by kfm-prov.
STABLE = URIRef("http://publications.europa.eu/resource/authority/planned-availability/STABLE")
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


def render_dcat(release: Release, *, existing: bytes | None, base_url: str | None = None,
                extent: Extent | None = None) -> bytes:
    """Add the release's distributions to the family's DCAT Turtle and return it.

    ``existing`` is the current Turtle (earlier versions) or None. The dataset's
    description (title, description, keywords, publisher, contact point, temporal and
    spatial coverage, license, rights holder) is rewritten from this release and the
    family's ``[families.NAME]`` config, so an edited config shows at the next promotion;
    its ``dct:modified`` follows the newest distribution. ``extent`` is the family's bbox
    and time span as the STAC collection computed them; the config's ``bbox`` and
    ``temporal`` take precedence. This version's distributions are replaced wholesale, so
    rendering the same release twice adds nothing. Writes nothing to disk.

    The dataset belongs to the lake's ``dcat:Catalog`` (the same IRI in every family's
    file), so the union of the folder's files is one catalog listing every dataset.
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
    license_iri, rights_text = _license(release.license)
    target = dcat_path(release.family)
    meta = release.metadata

    graph = Graph(bind_namespaces="none")
    for prefix, iri in (
        ("dcat", DCAT),
        ("dcatap", DCATAP),
        ("dct", DCTERMS),
        ("foaf", FOAF),
        ("prov", PROV),
        ("rdfs", RDFS),
        ("skos", SKOS),
        ("spdx", SPDX),
        ("vcard", VCARD),
        ("xsd", XSD),
    ):
        graph.bind(prefix, iri)
    if existing is not None:
        graph += _parse(existing, target)

    dataset = dataset_iri(ns, release.family)
    rights = None
    if rights_text is not None:
        rights = URIRef(f"{ns}rights/{_digest(rights_text)}")
        graph.set((rights, RDF.type, DCTERMS.RightsStatement))
        graph.set((rights, RDFS.label, Literal(rights_text)))
    if license_iri is not None:
        graph.set((license_iri, RDF.type, DCTERMS.LicenseDocument))
    holder = _agent(graph, ns, Agent(release.attribution)) if release.attribution else None
    publisher = meta.publisher or release.catalog.publisher
    publisher_iri = _agent(graph, ns, publisher) if publisher is not None else None

    for p in (DCTERMS.title, DCTERMS.description, DCAT.keyword, DCTERMS.publisher,
              DCAT.contactPoint, DCTERMS.temporal, DCTERMS.spatial, DCTERMS.license,
              DCTERMS.rights, DCTERMS.rightsHolder):
        graph.remove((dataset, p, None))
    graph.set((dataset, RDF.type, DCAT.Dataset))
    graph.set((dataset, DCTERMS.identifier, Literal(release.family)))
    graph.add((dataset, DCTERMS.title, Literal(release.title or meta.title or release.family)))
    graph.add((dataset, DCTERMS.description, Literal(
        release.description or meta.description
        or f"Promoted versions of {release.family}, published by kfm-prov.")))
    for keyword in meta.keywords:
        graph.add((dataset, DCAT.keyword, Literal(keyword)))
    if license_iri is not None:
        graph.add((dataset, DCTERMS.license, license_iri))
    if rights is not None:
        graph.add((dataset, DCTERMS.rights, rights))
    if holder is not None:
        graph.add((dataset, DCTERMS.rightsHolder, holder))
    if publisher_iri is not None:
        graph.add((dataset, DCTERMS.publisher, publisher_iri))
    if meta.contact_point is not None:
        graph.add((dataset, DCAT.contactPoint,
                   _contact(graph, ns, release.family, meta.contact_point)))
    bbox = meta.bbox or (tuple(extent.bbox) if extent and extent.bbox else None)
    if bbox is not None:
        location = URIRef(f"{ns}location/{_seg(release.family)}")
        graph.remove((location, None, None))
        graph.add((location, RDF.type, DCTERMS.Location))
        graph.add((location, DCAT.bbox, Literal(_wkt_box(bbox), datatype=GSP.wktLiteral)))
        centre = f"POINT({(bbox[0] + bbox[2]) / 2:g} {(bbox[1] + bbox[3]) / 2:g})"
        graph.add((location, DCAT.centroid, Literal(centre, datatype=GSP.wktLiteral)))
        graph.add((dataset, DCTERMS.spatial, location))
    period = meta.temporal or (extent.interval if extent else None)
    if period is not None and any(period):
        period_iri = URIRef(f"{ns}period/{_seg(release.family)}")
        graph.remove((period_iri, None, None))
        graph.add((period_iri, RDF.type, DCTERMS.PeriodOfTime))
        for p, value in ((DCAT.startDate, period[0]), (DCAT.endDate, period[1])):
            if value is not None:
                graph.add((period_iri, p, _date_literal(value)))
        graph.add((dataset, DCTERMS.temporal, period_iri))

    catalog = URIRef(f"{ns}catalog")
    for p in (DCTERMS.title, DCTERMS.description, DCTERMS.publisher):
        graph.remove((catalog, p, None))
    graph.set((catalog, RDF.type, DCAT.Catalog))
    graph.add((catalog, DCTERMS.title, Literal(release.catalog.title)))
    graph.add((catalog, DCTERMS.description, Literal(release.catalog.description)))
    catalog_publisher = release.catalog.publisher or publisher or (
        Agent(release.attribution) if release.attribution else Agent("kfm-prov"))
    graph.add((catalog, DCTERMS.publisher, _agent(graph, ns, catalog_publisher)))
    graph.add((catalog, DCAT.dataset, dataset))

    graph.set((SPDX.checksumAlgorithm_sha256, RDF.type, SPDX.ChecksumAlgorithm))
    graph.set((STABLE, RDF.type, SKOS.Concept))
    graph.set((STABLE, SKOS.prefLabel, Literal("stable", lang="en")))
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
        media_iri = URIRef(IANA_MEDIA_TYPES + media.group(1).lower())
        graph.add((media_iri, RDF.type, DCTERMS.MediaType))
        graph.add((media_iri, RDF.type, DCTERMS.MediaTypeOrExtent))
        for p, o in (
            (RDF.type, DCAT.Distribution),
            (DCTERMS.identifier, Literal(rf.path)),
            (DCTERMS.title, Literal(name)),
            (DCTERMS.description, Literal(_description(release, rf, name))),
            (DCAT.byteSize, Literal(rf.size, datatype=XSD.nonNegativeInteger)),
            (DCAT.mediaType, media_iri),
            (DCTERMS.format, media_iri),
            (DCATAP.availability, STABLE),  # versions are immutable and kept
            (SPDX.checksum, checksum),
            (DCAT.accessURL, url),
            (DCAT.downloadURL, url),
            (DCAT.version, Literal(release.version)),
            (DCTERMS.issued, issued),
            (PROV.wasGeneratedBy, activity),
            (PROV.specializationOf,
             URIRef(ns + version_file_id(release.family, release.version, rf.path))),
        ):
            graph.add((dist, p, o))
        if rf.carried_from is not None:  # the same bytes as that version's file
            graph.add((dist, PROV.wasDerivedFrom, URIRef(ns + version_file_id(
                release.family, rf.carried_from.version, rf.carried_from.path))))
        if license_iri is not None:
            graph.add((dist, DCTERMS.license, license_iri))
        if rights is not None:
            graph.add((dist, DCTERMS.rights, rights))
        graph.add((checksum, RDF.type, SPDX.Checksum))
        graph.add((checksum, SPDX.algorithm, SPDX.checksumAlgorithm_sha256))
        graph.add((checksum, SPDX.checksumValue, Literal(hexdigest, datatype=XSD.hexBinary)))
        graph.add((dataset, DCAT.distribution, dist))

    _upgrade_earlier(graph, ns)
    times = [
        t
        for d in graph.objects(dataset, DCAT.distribution)
        for t in graph.objects(d, DCTERMS.issued)
        if isinstance(t, Literal)
    ]
    graph.set((dataset, DCTERMS.modified, max(times, key=lambda t: (t.toPython(), str(t)))))
    graph.set((dataset, DCTERMS.issued, min(times, key=lambda t: (t.toPython(), str(t)))))
    return graph.serialize(format="turtle", encoding="utf-8")


def _description(release: Release, rf: ReleaseFile, name: str) -> str:
    where = (f"its lineage is in {release.prov_bundle_path} and its reconstructibility"
             f" certificate in {release.certificate_path}.")
    origin = rf.carried_from
    if origin is None:
        return (f"{name} of {release.family} {release.version}, promoted from run"
                f" {release.run_id}; {where}")
    return (f"{name} of {release.family} {release.version}, carried forward unchanged from"
            f" {release.family} {origin.version} (first promoted from run {origin.run_id},"
            f" certificate {origin.certificate}); {where}")


def _upgrade_earlier(graph: Graph, ns: str) -> None:
    """Type what distributions written by an earlier kfm-prov left untyped (licenses,
    media types) and turn their literal ``dct:rights`` into rights statements, so an
    upgraded lake's file still conforms to DCAT-AP. Earlier distributions keep what they
    say; nothing is invented for them."""
    for license_iri in set(graph.objects(None, DCTERMS.license)):
        if isinstance(license_iri, URIRef):
            graph.add((license_iri, RDF.type, DCTERMS.LicenseDocument))
    for media in set(graph.objects(None, DCAT.mediaType)) | set(
            graph.objects(None, DCTERMS.format)):
        if isinstance(media, URIRef):
            graph.add((media, RDF.type, DCTERMS.MediaType))
            graph.add((media, RDF.type, DCTERMS.MediaTypeOrExtent))
    for subject, text in list(graph.subject_objects(DCTERMS.rights)):
        if isinstance(text, Literal):
            rights = URIRef(f"{ns}rights/{_digest(str(text))}")
            graph.remove((subject, DCTERMS.rights, text))
            graph.add((subject, DCTERMS.rights, rights))
            graph.set((rights, RDF.type, DCTERMS.RightsStatement))
            graph.set((rights, RDFS.label, Literal(str(text))))


@dataclass(frozen=True)
class Extent:
    """What the lake knows of a family's coverage: the bbox of its products (west, south,
    east, north) and the span of its items (ISO 8601 start and end), either unknown."""

    bbox: tuple[float, ...] | None = None
    interval: tuple[str | None, str | None] | None = None


def _agent(graph: Graph, ns: str, agent: Agent) -> URIRef:
    """A ``foaf:Agent`` named by its name: the IRI holds a digest of the exact name, so two
    spellings never merge into one agent with two names."""
    iri = URIRef(f"{ns}agent/{_slug(agent.name)}-{_digest(agent.name)[:8]}")
    graph.set((iri, RDF.type, FOAF.Agent))
    graph.set((iri, FOAF.name, Literal(agent.name)))
    if agent.url is not None:
        graph.set((iri, FOAF.homepage, URIRef(agent.url)))
    if agent.email is not None:
        graph.set((iri, FOAF.mbox, URIRef("mailto:" + agent.email)))
    return iri


def _contact(graph: Graph, ns: str, family: str, agent: Agent) -> URIRef:
    iri = URIRef(f"{ns}contact/{_seg(family)}")
    graph.remove((iri, None, None))
    graph.add((iri, RDF.type, VCARD.Kind))
    graph.add((iri, VCARD.fn, Literal(agent.name)))
    if agent.email is not None:
        graph.add((iri, VCARD.hasEmail, URIRef("mailto:" + agent.email)))
    if agent.url is not None:
        graph.add((iri, VCARD.hasURL, URIRef(agent.url)))
    return iri


def _wkt_box(bbox: tuple[float, ...]) -> str:
    w, s, e, n = (f"{v:g}" for v in bbox[:4])
    return f"POLYGON(({w} {s}, {e} {s}, {e} {n}, {w} {n}, {w} {s}))"


def _date_literal(value: str) -> Literal:
    return Literal(value, datatype=XSD.dateTime if "T" in value else XSD.date)


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "agent"


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def _parse(data: bytes, path: str) -> Graph:
    graph = Graph(bind_namespaces="none")
    try:
        graph.parse(data=data.decode("utf-8"), format="turtle")
    except Exception as exc:  # rdflib raises many unrelated types for bad Turtle
        raise InputError(f"malformed Turtle: {exc}".splitlines()[0], file=path) from exc
    return graph


def _license(value: str) -> tuple[URIRef | None, str | None]:
    """An SPDX id gives its SPDX IRI; ``other`` or an expression has no single license
    IRI, so it is kept as a ``dct:rights`` statement instead of being misread as one."""
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    if value == "other":
        return None, "other"
    try:
        canonical = canonicalize_license_expression(value)
    except InvalidLicenseExpression as exc:
        raise InputError(f"license {value!r} is not an SPDX id: {exc}", field="license") from exc
    if re.fullmatch(r"[\w.+-]+", canonical) and not canonical.startswith("LicenseRef-"):
        return URIRef(SPDX_LICENSES + canonical), None
    return None, canonical


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
