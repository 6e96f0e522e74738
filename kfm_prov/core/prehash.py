"""Hashing that starts before the imports: ``kfm-prov raw add BIG`` overlaps the two.

A CLI process spends a few hundred milliseconds importing before the command runs; for a
1 GiB file that is a third of the hashing time. ``start`` (called by ``cli.entry`` before
anything heavy is imported) hashes the named files on a thread (``hashlib`` releases the
GIL) while the main thread imports. ``take`` hands a digest to ``store.digests`` only when
the file's identity and times (device, inode, size, mtime_ns, ctime_ns) were the same
before the hash, after it, and now: the bytes hashed are the bytes there. Anything else
is hashed again as if nothing had been started. Standard library only.

While it hashes, the interpreter's switch interval is lowered from 5 ms to 0.1 ms: the
hash thread needs the GIL twice per chunk (after the read and after the update, both of
which release it), and with the main thread importing (pure Python, holding the GIL) it
would otherwise wait up to 5 ms each time: the 1 GiB hash ran at a third of its speed
until the imports were done. The main thread pays a few more hand-overs.
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading

_MIN_BYTES = 16 << 20  # smaller files hash faster than a thread pays off
_CHUNK = 1 << 20  # as store.digests: few GIL hand-overs, in cache when hashed (4 MiB: ~3 % slower)
_SWITCH_INTERVAL = 1e-4  # seconds; see above

_results: dict[str, tuple[tuple[int, ...], str]] = {}
_thread: threading.Thread | None = None
_unwanted: set[str] = set()  # paths nobody will take (see ``discard``)


def _key(stat: os.stat_result) -> tuple[int, ...]:
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


def _hash(paths: list[str], interval: float) -> None:
    try:
        _hash_all(paths)
    finally:
        sys.setswitchinterval(interval)


def _hash_all(paths: list[str]) -> None:
    for path in paths:
        if path in _unwanted:
            continue
        try:
            with open(path, "rb", buffering=0) as handle:
                before = _key(os.fstat(handle.fileno()))
                digest = hashlib.sha256()
                buffer = bytearray(_CHUNK)
                view = memoryview(buffer)
                while count := handle.readinto(buffer):
                    digest.update(view[:count])
                    if path in _unwanted:
                        break
                after = _key(os.fstat(handle.fileno()))
        except OSError:
            continue
        if before == after and path not in _unwanted:
            _results[path] = (before, "sha256:" + digest.hexdigest())


def start(candidates: list[str]) -> None:
    """Hash, on one daemon thread, those of ``candidates`` that are large regular files."""
    global _thread
    paths = []
    for candidate in candidates:
        try:
            path = os.path.realpath(candidate)
            if os.path.isfile(path) and not os.path.islink(candidate) \
                    and os.stat(path).st_size >= _MIN_BYTES:
                paths.append(path)
        except (OSError, ValueError):
            continue
    if paths and _thread is None:
        interval = sys.getswitchinterval()
        _thread = threading.Thread(target=_hash, args=(paths, interval), name="kfm-prehash",
                                   daemon=True)
        sys.setswitchinterval(min(interval, _SWITCH_INTERVAL))
        _thread.start()


def pending() -> bool:
    return _thread is not None


def discard(paths: list[str | os.PathLike[str]]) -> None:
    """Stop hashing ``paths`` (their digests are known otherwise: the digest cache)."""
    for path in paths:
        try:
            _unwanted.add(os.path.realpath(path))
        except (OSError, ValueError):
            continue


def take(path: str | os.PathLike[str]) -> str | None:
    """The early digest of ``path`` if its file is unchanged since; else None."""
    if _thread is None:
        return None
    _thread.join()
    try:
        real = os.path.realpath(path)
        found = _results.pop(real, None)
        if found is None or _key(os.stat(real)) != found[0]:
            return None
    except (OSError, ValueError):
        return None
    return found[1]
