"""The label trail of a raw manifest: who set or changed a file's labels, when and why.

``labels.trail.jsonl`` beside each ``manifest.yml`` holds one JSON object per line
(``kfm.raw_labels.v1``): every label-setting event of a recorded raw file, its license,
attribution and sensitivity before and after, and the digest of the manifest it left.
``raw add`` writes an ``add`` entry for each new file, ``raw relabel`` a ``relabel``
entry for each change; a trail that begins on a manifest recorded before trails existed
starts with an ``adopt`` entry per file (the labels as found).

A file's labels are what the trail's last entry for it says; a manifest that says
otherwise was edited outside ``raw relabel`` (``verify`` and the gate report it). The
trail is written atomically (the whole file, through ``core/jsonio``) before the manifest,
so a relabel killed half-way leaves a trail ahead of its manifest, which a retry heals.

A manifest without a trail is *untracked*: ``verify`` and the gate fail it, because
deleting the trail and editing the manifest would otherwise pass. Lakes recorded before
trails existed begin theirs with ``raw adopt`` (``adopt`` entries, who vouches and why);
``raw add`` and ``raw relabel`` refuse to begin one silently.

What it cannot do: someone who may write the lake can rewrite the trail to match a hand
edit. Published versions are covered by their certificate, which binds the labels and
names the relabel entries it relied on.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.validation import validate_data
from kfm_prov.errors import InputError

TRAIL = "labels.trail.jsonl"
SCHEMA_VERSION = "kfm.raw_labels.v1"
LABELS = ("license", "attribution", "sensitivity")
ACTIONS = ("add", "adopt", "relabel")
MAX_TRAIL_BYTES = 512 * 1024 * 1024


def current_user() -> str:
    """Who acts when ``--by`` is not given: the login name, as ``promote`` records it."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def trail_rel(manifest_dir: str) -> str:
    return f"{manifest_dir}/{TRAIL}"


@dataclass(frozen=True)
class LabelEvent:
    """One line of the trail: a file's labels set (``add``, ``adopt``) or changed."""

    _KEYS = ("schema_version", "at", "by", "reason", "action", "path", "digest", "old", "new",
             "manifest_sha256")

    at: str
    by: str
    reason: str
    action: str
    path: str  # root-relative raw file
    digest: str  # its recorded bytes
    old: dict[str, str | None] | None  # labels before; None when first set
    new: dict[str, str | None]
    manifest_sha256: str  # the manifest as this event left it
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "schema_version": SCHEMA_VERSION, "at": self.at, "by": self.by,
                "reason": self.reason, "action": self.action, "path": self.path,
                "digest": self.digest, "old": self.old, "new": self.new,
                "manifest_sha256": self.manifest_sha256}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LabelEvent:
        return cls(data["at"], data["by"], data["reason"], data["action"], data["path"],
                   data["digest"], None if data.get("old") is None else dict(data["old"]),
                   dict(data["new"]), data["manifest_sha256"],
                   {k: v for k, v in data.items() if k not in cls._KEYS})

    def line(self) -> bytes:
        """How it is written: one canonical line (sorted keys, no spaces)."""
        return _canonical(self.to_dict()) + b"\n"

    @property
    def entry_digest(self) -> str:
        """Names this entry (a certificate cites it): sha256 of its canonical line."""
        return "sha256:" + hashlib.sha256(_canonical(self.to_dict())).hexdigest()

    def changed(self) -> list[str]:
        """The labels this event changed (all of them when it first set them)."""
        old = self.old or {}
        return [k for k in LABELS if self.old is None or old.get(k) != self.new.get(k)]


def _canonical(data: Any) -> bytes:
    return json.dumps(data, sort_keys=True, ensure_ascii=False,
                      separators=(",", ":")).encode("utf-8")


def labels_of(info: Any) -> dict[str, str | None]:
    """The three labels of a ``raw.RawInfo`` (or anything with those attributes)."""
    return {k: getattr(info, k) for k in LABELS}


_PATH = re.compile(rb'"path"\s*:\s*("(?:[^"\\]|\\.)*")')


def read_trail(config: LakeConfig, manifest_dir: str,
               only: Collection[str] | None = None) -> list[LabelEvent] | None:
    """The trail beside ``manifest_dir``'s manifest, oldest first; None when it has none.

    Strict: every line read is JSON that validates against ``raw_labels.v1.json``; an
    error names the trail and the line. With ``only``, just the lines about those paths
    are parsed (a regex finds each line's path first), so the gate looking at a few files
    of a family with a long trail does not pay for all of it; ``verify`` reads it all.
    """
    rel = trail_rel(manifest_dir)
    path = config.root / rel
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return None
    if path.is_symlink() or not path.is_file():
        raise InputError("the label trail must be a regular file", file=rel)
    if size > MAX_TRAIL_BYTES:
        raise InputError(f"file is {size} bytes, over the {MAX_TRAIL_BYTES}-byte limit for a"
                         " label trail", file=rel)
    events = []
    wanted = None if only is None else set(only)
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        where = f"line {number}"
        if wanted is not None:
            found = _PATH.search(line)
            try:
                if found is not None and json.loads(found.group(1)) not in wanted:
                    continue
            except ValueError:
                pass  # parsed below, where the error is named
        try:
            data = jsonio.loads(line, file=rel)
        except InputError as exc:
            raise InputError(exc.message, file=rel, field=where) from None
        problems = validate_data("raw_labels", data, file=rel)
        if problems:
            raise InputError(f"{problems[0].message} at {problems[0].pointer}", file=rel,
                             field=where)
        events.append(LabelEvent.from_dict(data))
    return events


def append_events(config: LakeConfig, manifest_dir: str, events: Sequence[LabelEvent]) -> None:
    """Add ``events`` to the trail: the whole file rewritten atomically (never half a line)."""
    if not events:
        return
    path = config.root / trail_rel(manifest_dir)
    before = path.read_bytes() if path.is_file() else b""
    if before and not before.endswith(b"\n"):
        before += b"\n"
    jsonio.atomic_write(path, before + b"".join(e.line() for e in events))


def latest(events: Iterable[LabelEvent]) -> dict[str, LabelEvent]:
    """Each file's last event: what its labels are, by the trail."""
    last: dict[str, LabelEvent] = {}
    for event in events:
        last[event.path] = event
    return last


def differences(said: Mapping[str, Any], now: Mapping[str, Any]) -> list[str]:
    """The labels on which two label sets disagree, in ``LABELS`` order."""
    return [k for k in LABELS if said.get(k) != now.get(k)]


def describe(keys: Sequence[str], said: Mapping[str, Any], now: Mapping[str, Any]) -> str:
    return ", ".join(f"{k} {said.get(k)!r} → {now.get(k)!r}" for k in keys)


def interrupted(last: LabelEvent | None, now: Mapping[str, Any]) -> bool:
    """The trail is one relabel ahead of its manifest: a relabel killed between its two
    writes, which running it again completes."""
    return (last is not None and last.action == "relabel" and last.old is not None
            and not differences(last.old, now))


@dataclass
class TrailCheck:
    """Manifests against their trails: the problems, and the trails as read."""

    findings: list[Finding] = field(default_factory=list)
    trails: dict[str, list[LabelEvent]] = field(default_factory=dict)  # manifest dir → events


def check_trails(config: LakeConfig, infos: Iterable[Any], *, partial: bool = False
                 ) -> TrailCheck:
    """Each recorded file's labels (``raw.RawInfo``) against its trail's last entry.

    ``raw-labels-edited``: the manifest says other labels than the trail, or records a
    file the trail never saw; ``raw-labels-trail-invalid``: the trail cannot be read;
    ``raw-labels-untracked``: the manifest has no trail, so nothing vouches for its labels
    (a deleted trail looks the same as one never begun; ``raw adopt`` begins it).
    ``partial``: read only the trail lines about these files (the gate), not every line
    (``verify``).
    """
    out = TrailCheck()
    by_dir: dict[str, list[Any]] = {}
    for info in infos:
        by_dir.setdefault(info.manifest.rsplit("/", 1)[0], []).append(info)
    for directory, members in sorted(by_dir.items()):
        rel = trail_rel(directory)
        try:
            events = read_trail(config, directory,
                                [i.path for i in members] if partial else None)
        except InputError as exc:
            out.findings.append(Finding("raw-labels-trail-invalid", exc.message, exc.file,
                                        exc.field, hint="restore it from a backup"))
            continue
        if events is None:
            paths = sorted(i.path for i in members)
            out.findings.append(Finding(
                "raw-labels-untracked", f"{members[0].manifest} has no label trail ({rel}),"
                f" so nothing vouches for the labels of {paths[0]}"
                + (f" and {len(paths) - 1} more file(s)" if len(paths) > 1 else ""),
                members[0].manifest, None,
                hint=f"if it was deleted, restore it from a backup; if this manifest predates"
                     f" label trails, check its labels, then kfm-prov raw adopt {paths[0]}"
                     " --reason TEXT"))
            continue
        out.trails[directory] = events
        last = latest(events)
        for info in sorted(members, key=lambda i: i.path):
            entry, now = last.get(info.path), labels_of(info)
            if entry is None:
                out.findings.append(Finding(
                    "raw-labels-edited", f"{info.path} is recorded in {info.manifest} but its"
                    f" label trail has no entry for it: recorded outside raw add",
                    info.manifest, None, hint=f"compare with {rel}; record captures with"
                    " kfm-prov raw add"))
                continue
            differ = differences(entry.new, now)
            if differ:
                again = (" (a relabel was interrupted: run it again)"
                         if interrupted(entry, now) else "")
                out.findings.append(Finding(
                    "raw-labels-edited", f"the labels of {info.path} were changed outside"
                    f" raw relabel: {describe(differ, entry.new, now)} (trail → manifest)"
                    f"{again}", info.manifest, differ[0],
                    hint=f"restore what {rel} says; change labels with kfm-prov raw relabel"))
    return out
