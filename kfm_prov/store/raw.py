"""Raw captures: ``manifest.yml`` and ``checksums.sha256`` under ``data/raw/<family>/``.

Raw is write-once. Recording a file whose bytes are already recorded is a no-op; a file
whose bytes changed since it was recorded is refused and nothing is written. The nearest
manifest (walking up from a file's directory to the family directory) applies to a file;
values that differ for one file live under its ``files:`` entry.
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import os
import re
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from kfm_prov.config import SENSITIVITIES, SENSITIVITY_RANK, UNKNOWN_SENSITIVITY, LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.paths import check_relative, is_under, resolve_inside
from kfm_prov.core.timeutil import now_utc
from kfm_prov.core.validation import is_valid, validate_data
from kfm_prov.errors import InputError, RefusedError
from kfm_prov.store import labels as trail
from kfm_prov.store.digests import hash_files, hex_of, normalize_digest, sha256_bytes

MANIFEST = "manifest.yml"
MAX_CHECKSUMS_BYTES = 256 * 1024 * 1024  # about 3.5 million entries
_MAX_LINE = 8192
CHECKSUMS = "checksums.sha256"
_RESERVED = {MANIFEST, CHECKSUMS, "manifest.yaml", trail.TRAIL}


@dataclass(frozen=True)
class RawInfo:
    """What the lake knows of one recorded raw file."""

    path: str  # root-relative
    digest: str  # as recorded in checksums.sha256
    license: str
    attribution: str
    sensitivity: str
    source: dict[str, str]
    captured_at: str | None
    manifest: str  # root-relative path of the manifest that applies
    #: False when the manifest gives no sensitivity (``sensitivity`` is then the
    #: restricted default): a refusal must say "unlabelled", not "recorded restricted".
    labelled: bool = True


# --- licenses -----------------------------------------------------------------------------

def canonical_license(value: str, *, file: str | None = None, field: str = "license") -> str:
    """The canonical SPDX expression, or an error naming the closest known id."""
    from packaging.licenses import InvalidLicenseExpression, canonicalize_license_expression

    try:
        return str(canonicalize_license_expression(value))
    except InvalidLicenseExpression:
        match = _nearest_license(value)
        hint = f"did you mean {match!r}?" if match else "see https://spdx.org/licenses/"
        raise InputError(f"unknown SPDX license {value!r}", file=file, field=field,
                         hint=hint) from None


def _nearest_license(value: str) -> str | None:
    ids = _license_ids()
    found = difflib.get_close_matches(value.lower(), list(ids), n=1, cutoff=0.5)
    return ids[found[0]] if found else None


@functools.cache
def _license_ids() -> dict[str, str]:
    from packaging.licenses._spdx import LICENSES

    return {key: entry["id"] for key, entry in LICENSES.items() if not entry["deprecated"]}


# --- YAML and checksums files -------------------------------------------------------------

def read_manifest(path: Path, *, display: str) -> dict[str, Any]:
    """Parse and schema-check a raw manifest; errors name the file and field."""
    data = jsonio.read_yaml(path, display=display)
    findings = validate_data("raw_manifest", data, file=display)
    if findings:
        raise InputError(findings[0].message, file=display, field=findings[0].pointer)
    return data


def read_checksums(path: Path, *, display: str, only: Collection[str] | None = None,
                   digests: Collection[str] | None = None) -> dict[str, str]:
    """``sha256sum`` format: ``<hex>  <path>`` (or ``<hex> *<path>``) → {path: digest}.

    Streamed a line at a time and bounded (``MAX_CHECKSUMS_BYTES``): every line is
    checked, but with ``only`` just those names (with ``digests`` just those digests) are
    kept, so looking up a few files in a family of a million costs a pass over the file,
    not a million entries in memory.
    """
    entries: dict[str, str] = {}
    try:
        handle = open(path, "rb")  # noqa: SIM115
    except FileNotFoundError:
        return entries
    except IsADirectoryError:
        raise InputError("expected a file, found a directory", file=display) from None
    wanted = None if only is None else set(only)
    wanted_digests = None if digests is None else set(digests)
    with handle:
        size = os.fstat(handle.fileno()).st_size
        if size > MAX_CHECKSUMS_BYTES:
            raise InputError(f"file is {size} bytes, over the {MAX_CHECKSUMS_BYTES}-byte limit"
                             " for a checksums file", file=display,
                             hint="split the family: a manifest.yml and checksums.sha256 in a"
                                  " subdirectory apply to the files below it")
        number = 0
        while raw_line := handle.readline(_MAX_LINE + 1):
            if len(raw_line) > _MAX_LINE:
                raise InputError("line too long for a checksums file", file=display,
                                 field=f"line {number + 1}")
            try:
                text = raw_line.decode("utf-8")
            except UnicodeDecodeError:
                raise InputError("file is not UTF-8 text", file=display) from None
            for line in text.splitlines():
                number += 1
                _checksum_line(line, number, display, entries, wanted, wanted_digests)
    return entries


def _checksum_line(line: str, number: int, display: str, entries: dict[str, str],
                   wanted: set[str] | None, wanted_digests: set[str] | None) -> None:
    if not line.strip() or line.startswith("#"):
        return
    digest, sep, name = line.partition(" ")
    if not sep or not name or name[0] not in " *":
        raise InputError("expected '<sha256 hex>  <path>'", file=display, field=f"line {number}")
    digest = normalize_digest(digest, file=display, field=f"line {number}")
    try:  # the one path validator: no '..', no control characters, no over-long names
        name = check_relative(name[1:], file=display, field=f"line {number}")
    except InputError as exc:
        raise InputError(f"unsafe path: {exc.message}", file=display,
                         field=f"line {number}") from None
    if (wanted is not None and name not in wanted) or (
            wanted_digests is not None and digest not in wanted_digests):
        return
    if name in entries and entries[name] != digest:
        raise InputError(f"{name!r} is listed twice with different digests", file=display,
                         field=f"line {number}")
    entries[name] = digest


def render_checksums(entries: dict[str, str]) -> bytes:
    return "".join(f"{hex_of(entries[name])}  {name}\n" for name in sorted(entries)).encode()


def _dump_yaml(data: dict[str, Any]) -> bytes:
    import yaml

    return yaml.safe_dump(data, sort_keys=False, allow_unicode=True).encode("utf-8")


# --- lookups ------------------------------------------------------------------------------

def family_of(config: LakeConfig, rel: str) -> str:
    """The family directory a raw path lies in; raw files must be inside one."""
    raw = config.rel("raw")
    if not is_under(rel, raw) or rel == raw:
        raise InputError(f"not under {raw}/: raw files must live in the raw zone", file=rel)
    parts = PurePosixPath(rel).relative_to(raw).parts
    if len(parts) < 2:
        raise InputError(f"raw files must be inside a family directory: {raw}/<family>/...",
                         file=rel)
    return parts[0]


def manifest_dirs(config: LakeConfig, rel: str) -> Iterator[str]:
    """Directories whose manifest could apply to ``rel``, nearest first, up to the family."""
    family_dir = f"{config.rel('raw')}/{family_of(config, rel)}"
    current = PurePosixPath(rel).parent
    while True:
        yield current.as_posix()
        if current.as_posix() == family_dir:
            return
        current = current.parent


def lookup(config: LakeConfig, rel: str) -> RawInfo | None:
    """The recorded state of raw file ``rel``, or None when no manifest lists it."""
    return lookup_many(config, [rel])[rel]


def lookup_many(config: LakeConfig, rels: Sequence[str]) -> dict[str, RawInfo | None]:
    """``lookup`` for many files, reading each manifest and checksums file once."""
    found: dict[str, RawInfo | None] = {rel: None for rel in rels}
    has_manifest: dict[str, bool] = {}
    by_directory: dict[str, list[str]] = {}
    for rel in rels:  # the nearest manifest applies, listed or not
        for directory in manifest_dirs(config, rel):
            if directory not in has_manifest:
                has_manifest[directory] = (config.root / directory / MANIFEST).is_file()
            if has_manifest[directory]:
                by_directory.setdefault(directory, []).append(rel)
                break
    for directory, members in by_directory.items():
        manifest = read_manifest(config.root / directory / MANIFEST,
                                 display=f"{directory}/{MANIFEST}")
        names = {rel: PurePosixPath(rel).relative_to(directory).as_posix() for rel in members}
        checksums = read_checksums(config.root / directory / CHECKSUMS,
                                   display=f"{directory}/{CHECKSUMS}", only=names.values())
        for rel, name in names.items():
            if name in checksums:
                found[rel] = _info(rel, checksums[name], manifest,
                                   manifest.get("files", {}).get(name, {}),
                                   f"{directory}/{MANIFEST}")
    return found


def _info(rel: str, digest: str, manifest: dict[str, Any], own: dict[str, Any],
          display: str) -> RawInfo:
    def pick(key: str, default: Any = None) -> Any:
        return own.get(key, manifest.get(key, default))

    return RawInfo(path=rel, digest=digest, license=pick("license"),
                   attribution=pick("attribution"),
                   sensitivity=pick("sensitivity", UNKNOWN_SENSITIVITY),
                   source=dict(pick("source", {}) or {}), captured_at=pick("captured_at"),
                   manifest=display, labelled=pick("sensitivity") is not None)


def iter_recorded(config: LakeConfig) -> Iterator[RawInfo | Finding]:
    """Every recorded raw file (or a finding for a broken manifest), for audits and indexing."""
    raw_dir = config.dir("raw")
    if not raw_dir.is_dir():
        return
    for manifest_path in sorted(raw_dir.rglob(MANIFEST)):
        directory = manifest_path.parent.relative_to(config.root).as_posix()
        display = f"{directory}/{MANIFEST}"
        try:
            manifest = read_manifest(manifest_path, display=display)
            checksums = read_checksums(manifest_path.parent / CHECKSUMS,
                                       display=f"{directory}/{CHECKSUMS}")
        except InputError as exc:
            yield Finding("raw-manifest-invalid", exc.message, exc.file, exc.field)
            continue
        files = manifest.get("files", {})
        for name, digest in sorted(checksums.items()):
            yield _info(f"{directory}/{name}", digest, manifest, files.get(name, {}), display)


def captures_by_digest(config: LakeConfig, digests: Collection[str],
                       ) -> tuple[dict[str, list[RawInfo]], list[Finding]]:
    """Every raw capture, in any family, whose recorded digest is one of ``digests``.

    Sensitivity is a property of bytes (SPEC §5), so what counts is every path that
    recorded them, read from the manifests and checksums on disk: a stale or edited index
    cannot hide a sensitive capture. One streamed pass over each checksums file of the raw
    zone; only the manifests of directories with a hit are parsed. A checksums file with no
    manifest beside it (a capture interrupted by an older kfm-prov) gives its files the
    label of an unknown capture, ``restricted``. Unreadable files are findings.
    """
    found: dict[str, list[RawInfo]] = {}
    findings: list[Finding] = []
    raw_dir = config.dir("raw")
    wanted = set(digests)
    wanted_hex = {hex_of(d).encode() for d in wanted}
    if not wanted or not raw_dir.is_dir():
        return found, findings
    for dirpath, dirnames, filenames in os.walk(raw_dir):
        dirnames.sort()
        if CHECKSUMS not in filenames:
            continue
        directory = Path(dirpath).relative_to(config.root).as_posix()
        try:
            if not _may_list(Path(dirpath) / CHECKSUMS, wanted_hex):
                continue
            hits = read_checksums(Path(dirpath) / CHECKSUMS, display=f"{directory}/{CHECKSUMS}",
                                  digests=wanted)
            if not hits:
                continue
            if MANIFEST in filenames:
                display = f"{directory}/{MANIFEST}"
                manifest = read_manifest(Path(dirpath) / MANIFEST, display=display)
            else:
                display, manifest = f"{directory}/{CHECKSUMS}", {}
        except InputError as exc:
            findings.append(Finding("raw-manifest-invalid", exc.message, exc.file, exc.field))
            continue
        files = manifest.get("files", {})
        for name, digest in sorted(hits.items()):
            found.setdefault(digest, []).append(
                _info(f"{directory}/{name}", digest, manifest, files.get(name, {}), display))
    return found, findings


_HEX64 = re.compile(rb"[0-9a-fA-F]{64}")


def _may_list(path: Path, wanted_hex: set[bytes]) -> bool:
    """Whether a checksums file may list one of the digests: one regex pass in C over its
    bytes, so only files with a hit pay for the line-by-line parse (and its checks)."""
    try:
        with open(path, "rb") as handle:
            blob = handle.read(MAX_CHECKSUMS_BYTES + 1)
    except OSError:
        return True  # let read_checksums say what is wrong
    if len(blob) > MAX_CHECKSUMS_BYTES:
        return True
    return any(token.lower() in wanted_hex for token in _HEX64.findall(blob))


def most_sensitive(captures: Sequence[RawInfo]) -> RawInfo | None:
    """The capture with the highest label (an unknown label counts as ``restricted``)."""
    return max(captures, key=lambda c: (sensitivity_rank(c.sensitivity), c.path), default=None)


def sensitivity_rank(label: str | None) -> int:
    return SENSITIVITY_RANK.get(label or "", SENSITIVITY_RANK[UNKNOWN_SENSITIVITY])


# --- raw add ------------------------------------------------------------------------------

def raw_lock(config: LakeConfig) -> Any:
    """The raw zone's one writer at a time: ``raw add``, ``relabel`` and ``adopt`` each
    read, change and rewrite a family's manifest, checksums and trail."""
    from filelock import FileLock

    lock_path = config.dir("cache") / "locks" / "raw.lock"
    lock_path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(str(lock_path), timeout=60)


@dataclass(frozen=True)
class AddResult:
    path: str
    digest: str
    status: str  # "added" | "unchanged"
    manifest: str


def add(config: LakeConfig, rels: Sequence[str], *, license: str, attribution: str,
        source_uri: str | None = None, source_type: str | None = None,
        sensitivity: str | None = None, captured_at: str | None = None,
        by: str | None = None,
        before_hash: Callable[[], object] | None = None) -> list[AddResult]:
    """Record raw files in their manifest and checksums; all or nothing.

    Mutates only ``manifest.yml``, ``checksums.sha256`` and the label trail
    (``labels.trail.jsonl``, an ``add`` entry per new file, ``by`` whom) of the manifests
    that apply. Refuses (exit 1) a file whose recorded digest differs from its bytes now;
    an unchanged file asked for with other labels is bad input (exit 2): labels change
    only by ``relabel``.
    ``before_hash`` is called once the arguments are checked, before the files are hashed
    (``kfm-prov raw add`` hashes them on another thread meanwhile): the caller's own
    preparation overlaps the hash.
    """
    license = canonical_license(license)
    if not attribution.strip():
        raise InputError("attribution must not be empty", field="--attribution")
    if sensitivity is not None and sensitivity not in SENSITIVITIES:
        raise InputError(f"sensitivity must be one of {', '.join(SENSITIVITIES)}",
                         field="--sensitivity")
    if not rels:
        raise InputError("no raw files given", field="PATH")
    targets = [_check_raw_file(config, rel) for rel in rels]
    with raw_lock(config):
        # Everything that does not need the digests comes first: with ``kfm-prov raw add``
        # the files are being hashed on another thread (core/prehash.py) meanwhile, so
        # reading the manifests and loading YAML and the manifest schema cost nothing.
        staged = {directory: _load_for_update(config, directory)
                  for directory in dict.fromkeys(_manifest_dir_for(config, rel)
                                                 for rel, _ in targets)}
        _dump_yaml({})  # imports yaml
        is_valid("raw_manifest", {})  # compiles the schema (without jsonschema)
        if before_hash is not None:
            before_hash()
        digests = hash_files([path for _, path in targets])
        return _record(config, [rel for rel, _ in targets], digests, {
            "license": license, "attribution": attribution, "sensitivity": sensitivity,
            "source": _source(source_uri, source_type), "captured_at": captured_at or now_utc(),
        }, by=(by or "").strip() or trail.current_user(), staged=staged)


def _source(uri: str | None, kind: str | None) -> dict[str, str] | None:
    source = {k: v for k, v in (("uri", uri), ("type", kind)) if v}
    return source or None


def _check_raw_file(config: LakeConfig, rel: str) -> tuple[str, Path]:
    family_of(config, rel)
    absolute = resolve_inside(config.root, rel)
    if PurePosixPath(rel).name in _RESERVED:
        raise InputError("a manifest, checksums or label trail file is not a raw capture", file=rel)
    if absolute.is_symlink():
        raise InputError("raw captures must be regular files, not symlinks", file=rel)
    if not absolute.is_file():
        raise InputError("no such file", file=rel)
    return rel, absolute


def _record(config: LakeConfig, rels: list[str], digests: list[str],
            meta: dict[str, Any], *, by: str,
            staged: dict[str, tuple[dict[str, Any], dict[str, str]]] | None = None,
            ) -> list[AddResult]:
    """Record the files and write the manifests that changed; ``staged`` holds manifests
    and checksums already read under the same lock (directory → both)."""
    preloaded = staged or {}
    staged = {}
    untracked: dict[str, str] = {}  # manifest dir → a file it records, where no trail is
    results: list[AddResult] = []
    refusals: list[str] = []
    relabels: list[tuple[str, list[str], dict[str, Any], dict[str, Any]]] = []
    added: list[RawInfo] = []
    for rel, digest in zip(rels, digests, strict=True):
        directory = _manifest_dir_for(config, rel)
        if directory not in staged:
            staged[directory] = (preloaded.get(directory)
                                 or _load_for_update(config, directory))
            if _untracked(config, directory, *staged[directory]):
                untracked[directory] = sorted(staged[directory][1])[0]
        manifest, checksums = staged[directory]
        name = PurePosixPath(rel).relative_to(directory).as_posix()
        display = f"{directory}/{MANIFEST}"
        recorded = checksums.get(name)
        if recorded == digest and manifest:
            now = trail.labels_of(_info(rel, digest, manifest,
                                        manifest.get("files", {}).get(name, {}), display))
            asked = {k: meta[k] for k in trail.LABELS if meta[k] is not None}
            with contextlib.suppress(InputError):  # a hand-written 'cc-by-4.0' is the same
                now["license"] = canonical_license(str(now["license"]))
            differ = trail.differences(asked, now)
            if [k for k in differ if k in asked]:
                relabels.append((rel, [k for k in differ if k in asked], now, asked))
            results.append(AddResult(rel, digest, "unchanged", display))
            continue
        if recorded is not None and recorded != digest:
            refusals.append(f"{rel} (recorded {recorded[:19]}…, now {digest[:19]}…)")
            continue
        # not recorded, or listed in a checksums file that has no manifest yet (a capture
        # killed between the two by an older kfm-prov): record it, label and all
        _apply_meta(manifest, name, meta)
        checksums[name] = digest
        added.append(_info(rel, digest, manifest, manifest.get("files", {}).get(name, {}),
                           display))
        results.append(AddResult(rel, digest, "added", display))
    if refusals:
        raise RefusedError("raw is write-once; bytes changed since they were recorded: "
                           + "; ".join(refusals),
                           hint="capture the new bytes under a new path")
    if relabels:
        rel, keys, now, asked = relabels[0]
        more = f" (and {len(relabels) - 1} more file(s))" if len(relabels) > 1 else ""
        flags = " ".join(f"--{k} {asked[k]!r}" for k in keys)
        raise InputError(f"already recorded with other labels: {trail.describe(keys, now, asked)}"
                         f"{more}; raw add never changes labels", file=rel, field=", ".join(keys),
                         hint=f"use kfm-prov raw relabel {rel} {flags} --reason TEXT")
    for directory in sorted({i.manifest.rsplit("/", 1)[0] for i in added} & set(untracked)):
        _refuse_untracked(directory, f"{directory}/{untracked[directory]}", doing="raw add")
    _refuse_lower_labels(config, added)
    at = now_utc()
    for directory, (manifest, checksums) in staged.items():
        display = f"{directory}/{MANIFEST}"
        mine = [i for i in added if i.manifest == display]
        if mine:
            findings = validate_data("raw_manifest", manifest, file=display)
            if findings:
                raise InputError(findings[0].message, file=findings[0].file,
                                 field=findings[0].pointer)
            body = _dump_yaml(manifest)
            events = [trail.LabelEvent(
                at, by, "recorded by kfm-prov raw add", "add", i.path, i.digest, None,
                trail.labels_of(i), sha256_bytes(body)) for i in mine]
            # The trail first, then the manifest, then the checksums: killed between any
            # two, the new file is not recorded yet and a retry records it (a trail entry
            # ahead of its manifest is superseded by the retry's). The manifest before the
            # checksums, or the file would be recorded without its label and inherit the
            # manifest's default.
            trail.append_events(config, directory, events)
            jsonio.atomic_write(config.root / directory / MANIFEST, body)
            jsonio.atomic_write(config.root / directory / CHECKSUMS, render_checksums(checksums))
    return results


def _untracked(config: LakeConfig, directory: str, manifest: dict[str, Any],
               checksums: dict[str, str]) -> bool:
    """The manifest records files but has no label trail (one never begun, or deleted)."""
    where = config.root / trail.trail_rel(directory)
    return bool(manifest and checksums) and not (where.exists() or where.is_symlink())


def _refuse_untracked(directory: str, first: str, *, doing: str) -> None:
    """``raw add`` and ``raw relabel`` never begin a trail on a manifest that records files:
    its labels would be vouched for in the user's name without anyone looking at them (and
    a trail deleted after a hand edit would launder the edit). ``raw adopt`` does, asked."""
    raise RefusedError(f"{directory}/{MANIFEST} records files but has no label trail"
                       f" ({trail.trail_rel(directory)}); {doing} will not begin one",
                       file=f"{directory}/{MANIFEST}",
                       hint="if the trail was deleted, restore it from a backup; if the"
                            " manifest predates label trails, check its labels, then"
                            f" kfm-prov raw adopt {first} --reason TEXT")


def _adopt_events(config: LakeConfig, directory: str, manifest: dict[str, Any],
                  checksums: dict[str, str], *, by: str, reason: str
                  ) -> list[trail.LabelEvent]:
    """An ``adopt`` entry per file the manifest records, its labels as found, so that the
    trail covers every file of its manifest from the start."""
    digest = sha256_bytes((config.root / directory / MANIFEST).read_bytes())
    display = f"{directory}/{MANIFEST}"
    files = manifest.get("files", {})
    at = now_utc()
    return [trail.LabelEvent(at, by, reason, "adopt", f"{directory}/{name}", recorded, None,
                             trail.labels_of(_info(f"{directory}/{name}", recorded, manifest,
                                                   files.get(name, {}), display)), digest)
            for name, recorded in sorted(checksums.items())]


def _refuse_lower_labels(config: LakeConfig, added: list[RawInfo]) -> None:
    """Bytes recorded at a higher sensitivity may not be recorded again under a lower label.

    A second capture of sensitive-location bytes labelled public would let a product made
    from it be published as public; lowering a label takes an explicit, recorded relabel.
    """
    if not added:
        return
    existing, _ = captures_by_digest(config, {info.digest for info in added})
    for info in added:
        others = existing.get(info.digest, []) + [a for a in added if a.digest == info.digest]
        top = most_sensitive([o for o in others if o.path != info.path])
        if top is not None and sensitivity_rank(top.sensitivity) > sensitivity_rank(
                info.sensitivity):
            raise RefusedError(
                f"{info.path} has the bytes of {top.path}, recorded {top.sensitivity}; refusing"
                f" to record them as {info.sensitivity}", file=top.manifest,
                hint=f"record it with --sensitivity {top.sensitivity} (a steward lowers a label"
                     " only by a recorded relabel)")


def _manifest_dir_for(config: LakeConfig, rel: str) -> str:
    dirs = list(manifest_dirs(config, rel))
    for directory in dirs:
        if (config.root / directory / MANIFEST).is_file():
            return directory
    return dirs[-1]  # the family directory


def _load_for_update(config: LakeConfig, directory: str) -> tuple[dict[str, Any], dict[str, str]]:
    manifest_path = config.root / directory / MANIFEST
    manifest = (read_manifest(manifest_path, display=f"{directory}/{MANIFEST}")
                if manifest_path.is_file() else {})
    checksums = read_checksums(config.root / directory / CHECKSUMS,
                               display=f"{directory}/{CHECKSUMS}")
    return manifest, checksums


def _apply_meta(manifest: dict[str, Any], name: str, meta: dict[str, Any]) -> None:
    """Set manifest defaults on first use; keep per-file values only where they differ."""
    if not manifest:
        manifest["schema_version"] = "kfm.raw_manifest.v1"
        for key in ("source", "license", "attribution", "captured_at", "sensitivity"):
            if meta[key] is not None:
                manifest[key] = meta[key]
        return
    own = {key: value for key, value in meta.items()
           if value is not None and manifest.get(key) != value and key != "captured_at"}
    files = manifest.setdefault("files", {})
    files.pop(name, None)  # left by a capture killed before its checksums were written
    if own:
        own["captured_at"] = meta["captured_at"]
        files[name] = own
    if not files:
        del manifest["files"]


# --- raw adopt ------------------------------------------------------------------------------

@dataclass(frozen=True)
class AdoptResult:
    path: str
    digest: str
    manifest: str
    labels: dict[str, str | None]  # as the manifest says, now vouched for by the trail
    trail: str  # root-relative label trail
    named: bool  # given on the command line (not only a file of the same manifest)

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "digest": self.digest, "manifest": self.manifest,
                "labels": self.labels, "trail": self.trail, "named": self.named}


def adopt(config: LakeConfig, rels: Sequence[str], *, reason: str,
          by: str | None = None) -> list[AdoptResult]:
    """Begin the label trail of manifests recorded before trails existed; all or nothing.

    For each manifest that applies to ``rels``, writes ``labels.trail.jsonl`` with an
    ``adopt`` entry for every file that manifest records (a trail covers its whole
    manifest): the labels as the manifest says them now, ``by`` whom and why. Mutates only
    those trails, never a manifest. Refuses (exit 2), before writing anything, a path no
    manifest records and a file whose manifest already has a trail (nothing to adopt: its
    labels change with ``relabel``).
    """
    rels, reason, who = _decision(config, rels, reason, by, "an adoption")
    with raw_lock(config):
        return _adopt(config, rels, reason, who)


def _decision(config: LakeConfig, rels: Sequence[str], reason: str, by: str | None,
              what: str) -> tuple[list[str], str, str]:
    """A steward's decision checked before the lock: the files (each once, each in a
    family), the reason it needs, and who takes it (``--by``, else the login name)."""
    if not reason.strip():
        raise InputError(f"{what} needs a reason", field="--reason")
    who = (by or "").strip() or trail.current_user()
    if not rels:
        raise InputError("no raw files given", field="PATH")
    for rel in rels:
        family_of(config, rel)
    return list(dict.fromkeys(rels)), reason.strip(), who


def _adopt(config: LakeConfig, rels: list[str], reason: str, by: str) -> list[AdoptResult]:
    infos = lookup_many(config, rels)
    directories: dict[str, list[str]] = {}
    for rel in rels:
        info = infos[rel]
        if info is None:
            raise InputError("not recorded in a raw manifest: adopt vouches only for recorded"
                             " files", file=rel, hint=f"record it with kfm-prov raw add {rel}")
        directories.setdefault(info.manifest.rsplit("/", 1)[0], []).append(rel)
    written: list[tuple[str, list[trail.LabelEvent]]] = []
    for directory, named in directories.items():
        where = config.root / trail.trail_rel(directory)
        if where.exists() or where.is_symlink():
            raise InputError(f"{directory}/{MANIFEST} already has a label trail: nothing to"
                             " adopt", file=named[0],
                             hint=f"change its labels with kfm-prov raw relabel {named[0]}"
                                  " --sensitivity LEVEL --reason TEXT")
        events = _adopt_events(config, directory, *_load_for_update(config, directory),
                               by=by, reason=reason)
        written.append((directory, events))
    # Everything read and checked before the first write; each trail is one atomic write.
    results = []
    for directory, events in written:
        trail.append_events(config, directory, events)
        given = set(directories[directory])
        results += [AdoptResult(e.path, e.digest, f"{directory}/{MANIFEST}", e.new,
                                trail.trail_rel(directory), e.path in given) for e in events]
    return results


# --- raw relabel ----------------------------------------------------------------------------

@dataclass(frozen=True)
class RelabelResult:
    path: str
    digest: str
    status: str  # "relabelled" | "unchanged"
    manifest: str
    old: dict[str, str | None]
    new: dict[str, str | None]
    trail: str  # root-relative label trail

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "digest": self.digest, "status": self.status,
                "manifest": self.manifest, "old": self.old, "new": self.new,
                "trail": self.trail}


def relabel(config: LakeConfig, rels: Sequence[str], *, reason: str, by: str | None = None,
            license: str | None = None, attribution: str | None = None,
            sensitivity: str | None = None) -> list[RelabelResult]:
    """Change the labels of recorded raw files: the only way to, and all or nothing.

    Mutates only the ``manifest.yml`` of each file (its ``files:`` entry) and the label
    trail beside it, which gains a ``relabel`` entry per changed file (who, when, why,
    old → new). Refuses paths no manifest records, and files whose manifest was edited
    outside ``relabel`` (its labels disagree with the trail), without writing anything.
    A file that already has the asked labels is reported ``unchanged``.
    """
    asked: dict[str, str] = {}
    if license is not None:
        asked["license"] = canonical_license(license, field="--license")
    if attribution is not None:
        if not attribution.strip():
            raise InputError("attribution must not be empty", field="--attribution")
        asked["attribution"] = attribution
    if sensitivity is not None:
        if sensitivity not in SENSITIVITIES:
            raise InputError(f"sensitivity must be one of {', '.join(SENSITIVITIES)}",
                             field="--sensitivity")
        asked["sensitivity"] = sensitivity
    if not asked:
        raise InputError("nothing to change: give --sensitivity, --license or --attribution",
                         field="--sensitivity")
    rels, reason, who = _decision(config, rels, reason, by, "a relabel")
    with raw_lock(config):
        return _relabel(config, rels, asked, reason, who)


def _relabel(config: LakeConfig, rels: list[str], asked: dict[str, str], reason: str,
             by: str) -> list[RelabelResult]:
    infos = lookup_many(config, rels)
    for rel in rels:
        if infos[rel] is None:
            raise InputError("not recorded in a raw manifest: relabel changes only recorded"
                             " files", file=rel, hint=f"record it first: kfm-prov raw add {rel}")
    staged: dict[str, dict[str, Any]] = {}
    trails: dict[str, dict[str, trail.LabelEvent]] = {}
    changes: list[tuple[str, RawInfo, dict[str, Any], dict[str, Any]]] = []
    results: list[RelabelResult] = []
    for rel in rels:
        info = infos[rel]
        assert info is not None
        directory = info.manifest.rsplit("/", 1)[0]
        if directory not in staged:
            staged[directory] = read_manifest(config.root / info.manifest,
                                              display=info.manifest)
            events = trail.read_trail(config, directory)
            if events is None:  # the file is recorded here, so the manifest is untracked
                _refuse_untracked(directory, rel, doing="raw relabel")
            trails[directory] = trail.latest(events or [])
        old = trail.labels_of(info)
        last = trails[directory].get(rel)
        if not trail.interrupted(last, old):
            said = last.new if last is not None else None
            differ = trail.differences(said, old) if said is not None else list(trail.LABELS)
            if differ:
                shown = (trail.describe(differ, said, old) if said is not None
                         else "the file has no entry")
                raise RefusedError(f"the labels of {rel} were changed outside relabel"
                                   f" ({shown}, trail → manifest)", file=info.manifest,
                                   field=differ[0],
                                   hint=f"restore what {trail.trail_rel(directory)} says,"
                                        " then relabel")
        new = {**old, **asked}
        status = "relabelled" if new != old else "unchanged"
        if status == "relabelled":
            changes.append((directory, info, old, new))
        results.append(RelabelResult(rel, info.digest, status, info.manifest, old, new,
                                     trail.trail_rel(directory)))
    at = now_utc()
    for directory, manifest in staged.items():
        mine = [(info, old, new) for d, info, old, new in changes if d == directory]
        if not mine:
            continue
        display = f"{directory}/{MANIFEST}"
        for info, _, new in mine:
            _set_labels(manifest, PurePosixPath(info.path).relative_to(directory).as_posix(),
                        new)
        findings = validate_data("raw_manifest", manifest, file=display)
        if findings:
            raise InputError(findings[0].message, file=display, field=findings[0].pointer)
        staged[directory] = manifest
    written: list[tuple[str, bytes, list[trail.LabelEvent]]] = []
    for directory, manifest in staged.items():
        mine = [(info, old, new) for d, info, old, new in changes if d == directory]
        if not mine:
            continue
        body = _dump_yaml(manifest)
        events = [trail.LabelEvent(at, by, reason, "relabel", info.path, info.digest, old, new,
                                    sha256_bytes(body)) for info, old, new in mine]
        written.append((directory, body, events))
    # Everything checked and rendered before the first write; then, per manifest, the
    # trail before the manifest (killed between them, a retry of the same relabel heals).
    for directory, body, events in written:
        trail.append_events(config, directory, events)
        jsonio.atomic_write(config.root / directory / MANIFEST, body)
    return results


def _set_labels(manifest: dict[str, Any], name: str, new: dict[str, Any]) -> None:
    """The file's own entry holds a label only where it differs from the manifest's."""
    files = manifest.setdefault("files", {})
    own = dict(files.get(name, {}))
    for key in trail.LABELS:
        value = new[key]
        if manifest.get(key) == value:
            own.pop(key, None)
        elif value is not None:
            own[key] = value
    if own:
        files[name] = own
    else:
        files.pop(name, None)
    if not files:
        del manifest["files"]
