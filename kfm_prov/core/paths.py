"""Safe paths: every path kfm-prov records is POSIX, relative to the root, and stays inside it.

A receipt that names ``/etc/passwd``, ``../other-lake/x`` or a symlink that leaves the lake
would let lineage point at files nobody governs, so these are refused at the boundary,
before anything else reads the path.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

from kfm_prov.errors import InputError

_FORBIDDEN_CHARS = ("\x00", "\n", "\r")
_MAX_NAME, _MAX_PATH = 255, 4096  # bytes, as on Linux and macOS
# C0 controls, DEL and the C1 controls: a name holding one cannot be shown on one line,
# in a log or a terminal, without being mistaken for something else.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f]")
_SURROGATE = re.compile("[\ud800-\udfff]")  # bytes that are not UTF-8 (surrogateescape)


def unsafe_reason(rel: str) -> str | None:
    """Why the text of a path cannot be recorded, or None; names are shown with ``repr``."""
    if any(ch in rel for ch in _FORBIDDEN_CHARS):
        return f"path contains a NUL or newline: {rel!r}"
    if _CONTROL.search(rel):
        return f"path contains a control character: {rel!r}"
    if _SURROGATE.search(rel):
        return f"path is not valid UTF-8: {rel!r}"
    if "\\" in rel:
        return f"path must use '/' separators: {rel!r}"
    return None


# Segments of letters, digits, '.', '_' and '-' that do not start with '.', each at most 255
# bytes: a path of these is one nothing below refuses or changes, told by one regex match
# (most paths are; ``run.output`` checks one per output).
_PLAIN = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,254}(?:/[A-Za-z0-9_-][A-Za-z0-9._-]{0,254})*")


# Any character ``unsafe_reason`` refuses (NUL, CR and LF are control characters too).
_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\\\\]")


def unsafe_paths(rels: Iterable[str]) -> list[str]:
    """The paths ``unsafe_reason`` refuses, sorted: one scan of them all when none is."""
    rels = list(rels)
    if not _UNSAFE.search("/".join(rels)):
        return []
    return sorted(rel for rel in rels if unsafe_reason(rel) is not None)


def check_relative(rel: str, *, file: str | None = None, field: str | None = None) -> str:
    """Validate the text of a root-relative path and return it normalised (POSIX, no ``./``)."""
    if type(rel) is str and len(rel) <= _MAX_PATH and _PLAIN.fullmatch(rel):
        return rel
    return _checked_relative(rel, file=file, field=field)


def _checked_relative(rel: str, *, file: str | None = None, field: str | None = None) -> str:
    """``check_relative`` without its fast path: every rule, one by one."""
    if not isinstance(rel, str) or not rel:
        raise InputError("path must be a non-empty string", file=file, field=field)
    reason = unsafe_reason(rel)  # first: a lone surrogate cannot even be measured in bytes
    if reason is not None:
        raise InputError(reason, file=file, field=field)
    _check_length(rel, file=file, field=field)
    pure = PurePosixPath(rel)
    if pure.is_absolute():
        raise InputError(f"path must be relative to the lake root: {rel!r}", file=file, field=field)
    if ".." in pure.parts:
        raise InputError(f"path must not contain '..': {rel!r}", file=file, field=field)
    normalised = pure.as_posix()
    if normalised in ("", "."):
        raise InputError("path names the lake root itself", file=file, field=field)
    return normalised


def check_normalized(rel: str, *, file: str | None = None, field: str | None = None) -> str:
    """``check_relative``, and the path must already be in its normal form (records we write)."""
    normal = check_relative(rel, file=file, field=field)
    if normal != rel:
        raise InputError(f"{rel!r} is not a normalised root-relative POSIX path", file=file,
                         field=field)
    return rel


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def check_name(value: str, field: str) -> str:
    """A family, version or other name that becomes one path segment and one identifier."""
    if not isinstance(value, str) or not _NAME.match(value) or len(value) > _MAX_NAME:
        raise InputError(f"{field} {value!r} is not a safe name (letters, digits, '.', '_',"
                         " '-')", field=field)
    return value


def _check_length(path: str, *, file: str | None = None, field: str | None = None) -> None:
    """Refuse what no file system can hold, before the OS fails with ENAMETOOLONG."""
    if len(path.encode("utf-8", "surrogateescape")) > _MAX_PATH or any(
            len(part.encode("utf-8", "surrogateescape")) > _MAX_NAME
            for part in path.split("/")):
        raise InputError(f"path is too long ({len(path)} characters)", file=file, field=field)


def resolve_inside(
    root: Path, rel: str, *, file: str | None = None, field: str | None = None
) -> Path:
    """Absolute path of ``rel`` under ``root``, refusing any symlink that leads out of it.

    A directory on the way that is a symlink is refused too, even one that stays inside
    the root: ``runs/<family>/<run>/artifacts/up -> ../../<other run>/artifacts`` would
    record another run's file (or a raw file) under this path, zone and run.
    """
    rel = check_relative(rel, file=file, field=field)
    real_root = root.resolve()
    target = (real_root / rel).resolve()
    if not target.is_relative_to(real_root):
        raise InputError(f"path leaves the lake root through a symlink: {rel!r}", file=file,
                         field=field)
    if symlink_on_the_way(real_root, rel, final=False):
        raise InputError(f"path goes through a symlinked directory: {rel!r}", file=file,
                         field=field)
    return real_root / rel


def symlink_on_the_way(root: Path, rel: str, *, final: bool = True) -> bool:
    """True when a directory of ``rel`` below ``root`` (or, with ``final``, the file) is a
    symlink: what is found there is not what the path says."""
    real_root = root.resolve()
    target = real_root / rel
    if final and target.is_symlink():
        return True
    return target.parent.resolve() != target.parent


def to_relative(root: Path, path: str | os.PathLike[str], *, base: Path | None = None) -> str:
    """Root-relative POSIX path of a user-typed path (relative to ``base`` or absolute).

    Used for command-line arguments; the result passed ``resolve_inside``, so symlinks that
    leave the root are refused here too.
    """
    raw = os.fspath(path)
    if any(ch in raw for ch in _FORBIDDEN_CHARS):
        raise InputError("path contains a NUL or newline", file=repr(raw))
    _check_length(raw, file=f"{raw[:80]}…" if len(raw) > 80 else raw)
    candidate = Path(raw)
    if not candidate.is_absolute():
        candidate = (base or Path.cwd()) / candidate
    real_root = root.resolve()
    absolute = Path(os.path.normpath(candidate))
    if not absolute.is_relative_to(real_root):
        # Allow a cwd reached through a symlink to the root: compare resolved parents.
        parent = absolute.parent.resolve()
        if not parent.is_relative_to(real_root):
            raise InputError("path is outside the lake root", file=raw)
        absolute = parent / absolute.name
    rel = absolute.relative_to(real_root).as_posix()
    resolve_inside(real_root, rel, file=raw)
    return rel


def is_under(rel: str, prefix: str) -> bool:
    """True when root-relative ``rel`` is ``prefix`` or lies below it."""
    return rel == prefix or rel.startswith(prefix.rstrip("/") + "/")


def walk_tree(directory: Path, prefix: str) -> tuple[set[str], set[str]]:
    """``prefix/<relative path>`` of the regular files and of the symlinks under
    ``directory``, without entering symlinked directories."""
    files: set[str] = set()
    links: set[str] = set()
    pending = [(os.fspath(directory), prefix)]
    while pending:
        path, rel = pending.pop()
        try:
            with os.scandir(path) as entries:
                for entry in entries:
                    child = f"{rel}/{entry.name}"
                    if entry.is_symlink():
                        links.add(child)
                    elif entry.is_dir(follow_symlinks=False):
                        pending.append((entry.path, child))
                    elif entry.is_file(follow_symlinks=False):
                        files.add(child)
        except OSError:
            continue
    return files, links
