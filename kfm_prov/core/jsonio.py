"""The one place files are written, and strict JSON and YAML reading.

Writes go to a temporary file in the same directory, are fsynced and renamed over the
target, so a crash leaves either the old file or the new one, never half of either.
JSON readers reject duplicate keys (two ``"status"`` keys make a receipt ambiguous) and
files too large to be a receipt.
"""

from __future__ import annotations

import contextlib
import functools
import json
import math
import os
import tempfile
from pathlib import Path
from typing import Any

from kfm_prov.core.crashpoints import crash_point
from kfm_prov.errors import InputError

MAX_JSON_BYTES = 64 * 1024 * 1024
MAX_YAML_BYTES = 4 * 1024 * 1024
MAX_DEPTH = 100


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
        crash_point(f"write:{path.name}")
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    fsync_dir(path.parent)


_FICLONE = 0x40049409  # linux/fs.h: share the source's extents (btrfs, XFS, bcachefs…)


def clone_file(source: Path, target: Path) -> str:
    """Copy ``source`` to a new ``target``: a reflink (copy on write) where the file system
    can, else a plain copy (which the kernel does, ``sendfile``). Never a hard link: a later
    write to the source must not change the copy. Returns ``"reflink"`` or ``"copy"``."""
    import fcntl
    import shutil

    with open(source, "rb") as src, open(target, "xb") as dst:
        try:
            fcntl.ioctl(dst.fileno(), _FICLONE, src.fileno())
            return "reflink"
        except OSError:
            pass  # not supported here (ext4, tmpfs, across devices): copy the bytes
    shutil.copyfile(source, target)
    return "copy"


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable."""
    fsync_path(directory)


def fsync_path(path: Path) -> None:
    """Flush a file (or a directory's entries) written by someone else to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def dumps(data: Any) -> bytes:
    """Our JSON style: indented, UTF-8, trailing newline; key order as given."""
    return (dumps_text(data) + "\n").encode("utf-8")


class _NotPlain(Exception):
    """A value ``dumps_text`` leaves to the json module (a tuple, a subclass, a cycle…)."""


_ENCODE_STR = json.encoder.encode_basestring  # the C functions json.dumps uses
_ENCODE_ASCII = json.encoder.encode_basestring_ascii


def dumps_text(data: Any) -> str:
    """``json.dumps(data, indent=2, ensure_ascii=False)``, the same text, about 3× faster.

    The json module's indented encoder is its pure-Python one, a generator per container;
    a trace of 1,000 runs spent a quarter of its time there. Plain JSON values (exactly
    dict with str keys, list, str, int, float, bool, None) are written here; anything else
    goes to ``json.dumps`` whole, so the text and the errors are always json's.
    """
    return indented_text(data)


def indented_text(data: Any, newline: str = "\n", *, ensure_ascii: bool = False) -> str:
    """:func:`dumps_text` for a value nested in a document being written: each line after
    the first starts with ``newline`` (a line break and the indent so far). PROV-JSON
    (``ensure_ascii=True``, as the ``prov`` package writes it) is built from these."""
    parts: list[str] = []
    try:
        _plain(data, newline, parts, _ENCODE_ASCII if ensure_ascii else _ENCODE_STR)
    except (_NotPlain, RecursionError):
        # json.dumps never puts a raw line break inside a string: each one is a new line.
        return json.dumps(data, indent=2, ensure_ascii=ensure_ascii).replace("\n", newline)
    return "".join(parts)


def _plain(value: Any, newline: str, parts: list[str], encode: Any) -> None:
    kind = type(value)
    if kind is str:
        parts.append(encode(value))
    elif kind is dict:
        if not value:
            parts.append("{}")
            return
        inner = newline + "  "
        separator = "{" + inner
        for key, item in value.items():
            if type(key) is not str:
                raise _NotPlain
            parts.append(separator)
            parts.append(encode(key))
            parts.append(": ")
            if type(item) is str:
                parts.append(encode(item))
            else:
                _plain(item, inner, parts, encode)
            separator = "," + inner
        parts.append(newline + "}")
    elif kind is list:
        if not value:
            parts.append("[]")
            return
        inner = newline + "  "
        separator = "[" + inner
        for item in value:
            parts.append(separator)
            _plain(item, inner, parts, encode)
            separator = "," + inner
        parts.append(newline + "]")
    elif value is None:
        parts.append("null")
    elif value is True:
        parts.append("true")
    elif value is False:
        parts.append("false")
    elif kind is int:
        parts.append(int.__repr__(value))
    elif kind is float:
        if value != value:
            parts.append("NaN")
        elif value in (math.inf, -math.inf):
            parts.append("Infinity" if value > 0 else "-Infinity")
        else:
            parts.append(float.__repr__(value))
    else:
        raise _NotPlain


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


class _NotFinite(ValueError):
    pass


def _reject_constant(name: str) -> Any:
    raise _NotFinite(name)


_MAX_INT_DIGITS = 4300  # Python's own limit for int(str); past it json raises ValueError


def _bounded_int(text: str) -> int:
    if len(text) > _MAX_INT_DIGITS:
        raise _TooLong(len(text))
    return int(text)


class _TooLong(ValueError):
    pass


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (math.inf, -math.inf):
        raise _NotFinite(text)
    return value


def check_depth(data: Any, *, file: str, limit: int = MAX_DEPTH) -> Any:
    """Refuse data nested deeper than ``limit`` (no receipt is; recursion would fail later)."""
    level: list[Any] = [data]
    for _ in range(limit):
        level = [child for value in level if isinstance(value, dict | list)
                 for child in (value.values() if isinstance(value, dict) else value)]
        if not level:
            return data
    if any(isinstance(value, dict | list) for value in level):
        raise InputError(f"nested more than {limit} levels deep", file=file)
    return data


def _pairs_once(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """``dict(pairs)`` in C; a key given twice raises (the precise path then names it)."""
    result = dict(pairs)
    if len(result) != len(pairs):
        raise _DuplicateKey(pairs[0][0])
    return result


_FAST_INT_LIMIT = 10 ** (_MAX_INT_DIGITS - 1)  # smaller ints have fewer digits than the limit


def _plain_numbers(data: Any) -> bool:
    """Whether every number in ``data`` is one the precise path parses the same way: a
    finite float, an int of fewer than ``_MAX_INT_DIGITS - 1`` digits. Also refuses (False)
    anything nested deeper than ``MAX_DEPTH``, so that True means ``check_depth`` passes."""
    if type(data) is not dict and type(data) is not list:  # a document that is one value
        return _plain_numbers([data])
    level: list[Any] = [data]
    for _ in range(MAX_DEPTH):
        below: list[Any] = []
        for value in level:
            kind = type(value)
            children = value.values() if kind is dict else value if kind is list else None
            if children is None:
                continue
            for child in children:
                kind = type(child)
                if kind is dict or kind is list:
                    below.append(child)
                elif kind is float:
                    if child - child != 0.0:  # inf or nan
                        return False
                elif kind is int and not -_FAST_INT_LIMIT < child < _FAST_INT_LIMIT:
                    return False
        if not below:
            return True
        level = below
    return False


_FAST_DECODER = json.JSONDecoder(object_pairs_hook=_pairs_once, parse_constant=_reject_constant)


def loads(text: str | bytes, *, file: str) -> Any:
    """Parse JSON text, naming ``file`` and the position in any error.

    Stricter than ``json``: duplicate keys, ``NaN``/``Infinity`` (not JSON, and nothing
    can be written back from them) and absurd nesting are refused.

    A fast path first: the C parser with a C ``dict`` per object, then one walk over the
    values for what the per-number hooks and ``check_depth`` would refuse. It returns only
    data that the precise path (below) returns equal; any doubt (an error, a key given
    twice, a huge int, an infinite float, deep nesting) reruns the precise path, which
    decides and words the error (``tests/test_jsonio_fast.py`` checks the equality).
    """
    try:  # what json.loads does, with one decoder made once (making it costs ~3 µs)
        if isinstance(text, str):
            if text.startswith("\ufeff"):  # json.loads refuses it: the precise path words it
                raise ValueError
            data = _FAST_DECODER.decode(text)
        else:
            data = _FAST_DECODER.decode(text.decode(json.detect_encoding(text), "surrogatepass"))
    except (ValueError, RecursionError):
        pass
    else:
        if _plain_numbers(data):
            _check_surrogates(text, data, file)
            return data
    return _loads_precise(text, file=file)


def _check_surrogates(text: str | bytes, data: Any, file: str) -> None:
    if isinstance(text, str):
        if "\\u" in text and ("\\ud" in text or "\\uD" in text):
            _check_no_lone_surrogate(data, file)
    elif b"\\u" in text and (b"\\ud" in text or b"\\uD" in text):  # one scan, usually
        _check_no_lone_surrogate(data, file)


def _loads_precise(text: str | bytes, *, file: str) -> Any:
    """``loads`` with a hook per object and per number: decides and names every error."""
    try:
        data = json.loads(text, object_pairs_hook=_reject_duplicates,
                          parse_constant=_reject_constant, parse_float=_finite_float,
                          parse_int=_bounded_int)
    except _DuplicateKey as exc:
        raise InputError(f"duplicate key {exc.key!r} in JSON object", file=file,
                         field=exc.key) from None
    except _NotFinite as exc:
        raise InputError(f"malformed JSON: {exc.args[0]} is not a JSON number",
                         file=file) from None
    except _TooLong as exc:
        raise InputError(f"malformed JSON: an integer of {exc.args[0]} digits (at most"
                         f" {_MAX_INT_DIGITS})", file=file) from None
    except json.JSONDecodeError as exc:
        raise InputError(f"malformed JSON: {exc.msg} at line {exc.lineno} column {exc.colno}",
                         file=file) from None
    except UnicodeDecodeError:
        raise InputError("file is not UTF-8 text", file=file) from None
    except RecursionError:
        raise InputError("JSON nested too deeply", file=file) from None
    check_depth(data, file=file)
    _check_surrogates(text, data, file)
    return data


def _check_no_lone_surrogate(data: Any, file: str) -> None:
    """A ``\\udXXX`` escape that is not half of a pair is no character: refuse it here,
    before it reaches a file or database that must encode it as UTF-8."""
    try:
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("malformed JSON: a \\u escape names half of a surrogate pair",
                         file=file) from None
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


@functools.cache
def _yaml_loader() -> type:
    import yaml

    # libyaml's parser when present: the pure-Python one needs minutes for a few MB.
    base = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

    class StrictLoader(base):  # type: ignore[valid-type, misc]
        """SafeLoader that refuses duplicate keys, which YAML would silently overwrite."""

    def construct_mapping(loader: Any, node: Any, deep: bool = False) -> dict[Any, Any]:
        keys = set()
        for key_node, _ in node.value:
            key = loader.construct_object(key_node, deep=deep)
            if key in keys:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            keys.add(key)
        return dict(loader.construct_pairs(node, deep=deep))

    StrictLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
                                 construct_mapping)
    # Timestamps stay strings: receipts carry RFC 3339 text, not datetime objects.
    StrictLoader.yaml_implicit_resolvers = {
        ch: [(tag, rx) for tag, rx in resolvers if tag != "tag:yaml.org,2002:timestamp"]
        for ch, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
    }
    return StrictLoader


def read_yaml(path: Path, *, display: str, max_bytes: int = MAX_YAML_BYTES) -> Any:
    """Read YAML strictly: duplicate keys refused, timestamps kept as text.

    Refuses files over ``max_bytes``: a YAML document costs ~60 times its size in memory
    to load, so a manifest of a million entries would exhaust it.
    """
    import yaml

    try:
        if path.stat().st_size > max_bytes:
            raise InputError(f"file is over the {max_bytes}-byte limit for YAML", file=display,
                             hint="split it: a manifest.yml in a subdirectory applies to"
                                  " the files below it")
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError("file not found", file=display) from None
    except IsADirectoryError:
        raise InputError("expected a file, found a directory", file=display) from None
    except UnicodeDecodeError:
        raise InputError("file is not UTF-8 text", file=display) from None
    try:
        return check_depth(yaml.load(text, Loader=_yaml_loader()), file=display)
    except RecursionError:
        raise InputError("YAML nested too deeply", file=display) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise InputError(f"malformed YAML{where}: {problem}", file=display) from None
