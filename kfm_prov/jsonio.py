"""The one place files are written, and strict JSON reading.

Writes go to a temporary file in the same directory, are fsynced and renamed over the
target, so a crash leaves either the old file or the new one, never half of either.
JSON readers reject duplicate keys (two ``"status"`` keys make a receipt ambiguous) and
files too large to be a receipt.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

from kfm_prov.errors import InputError

MAX_JSON_BYTES = 64 * 1024 * 1024


def atomic_write(path: Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def dumps(data: Any) -> bytes:
    """Our JSON style: indented, UTF-8, trailing newline; key order as given."""
    return (json.dumps(data, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


def dumps_sorted(data: Any) -> bytes:
    """Deterministic JSON for documents compared byte for byte (PROV, STAC, certificates)."""
    return (json.dumps(data, indent=2, ensure_ascii=False, sort_keys=True) + "\n").encode("utf-8")


def write_json(path: Path, data: Any) -> None:
    atomic_write(path, dumps(data))


def _reject_duplicates(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise _DuplicateKey(key)
        result[key] = value
    return result


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def loads(text: str | bytes, *, file: str) -> Any:
    """Parse JSON text, naming ``file`` and the position in any error."""
    try:
        return json.loads(text, object_pairs_hook=_reject_duplicates)
    except _DuplicateKey as exc:
        raise InputError(f"duplicate key {exc.key!r} in JSON object", file=file,
                         field=exc.key) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                         file=file) from None
    except UnicodeDecodeError:
        raise InputError("file is not UTF-8 text", file=file) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", file=file) from None


def read_json(path: Path, *, display: str | None = None, max_bytes: int = MAX_JSON_BYTES) -> Any:
    """Read a JSON file strictly; ``display`` is the name used in errors (root-relative)."""
    name = display or str(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        raise InputError("file not found", file=name) from None
    if size > max_bytes:
        raise InputError(f"file is {size} bytes, over the {max_bytes}-byte limit for JSON",
                         file=name)
    try:
        data = path.read_bytes()
    except IsADirectoryError:
        raise InputError("expected a file, found a directory", file=name) from None
    return loads(data, file=name)
