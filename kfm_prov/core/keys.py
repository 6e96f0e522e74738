"""Ed25519 signing keys: generate, load, and refuse keys that are not safe to use.

A private key is only as private as its file: one readable by the group or others, or
stored inside the lake (where every pipeline and everyone with write access to the lake
can read it, and where it would be published with the data), is refused before it signs
anything. The key id is the sha256 of the public key's DER SubjectPublicKeyInfo, in hex,
so anyone holding the ``.pub`` PEM can compute it (``openssl pkey -pubin -outform DER |
sha256sum``). ``cryptography`` is imported where used: ``kfm-prov --help`` stays instant.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfm_prov.core import jsonio
from kfm_prov.errors import InputError, RefusedError

PRIVATE_NAME = "kfm-prov-signing.key"
PUBLIC_NAME = "kfm-prov-signing.pub"
MAX_KEY_BYTES = 64 * 1024


@dataclass(frozen=True)
class PublicKey:
    """A trusted (or offered) Ed25519 public key."""

    keyid: str
    path: str  # as given, for messages
    key: Any  # cryptography Ed25519PublicKey

    def verify(self, signature: bytes, message: bytes) -> bool:
        from cryptography.exceptions import InvalidSignature

        try:
            self.key.verify(signature, message)
        except InvalidSignature:
            return False
        return True


@dataclass(frozen=True)
class SigningKey:
    """A private Ed25519 key that passed the safety checks."""

    keyid: str
    path: str
    key: Any  # cryptography Ed25519PrivateKey

    def sign(self, message: bytes) -> bytes:
        return bytes(self.key.sign(message))

    @property
    def public(self) -> PublicKey:
        return PublicKey(self.keyid, self.path, self.key.public_key())


@dataclass(frozen=True)
class GeneratedKey:
    private_path: Path
    public_path: Path
    keyid: str

    def to_dict(self) -> dict[str, str]:
        return {"private_key": str(self.private_path), "public_key": str(self.public_path),
                "keyid": self.keyid}


def key_id(public_key: Any) -> str:
    """sha256 (hex) of the DER SubjectPublicKeyInfo of an Ed25519 public key."""
    from cryptography.hazmat.primitives import serialization

    der = public_key.public_bytes(serialization.Encoding.DER,
                                  serialization.PublicFormat.SubjectPublicKeyInfo)
    return hashlib.sha256(der).hexdigest()


def generate(out_dir: Path, *, name: str = "kfm-prov-signing",
             lake_root: Path | None = None) -> GeneratedKey:
    """Write a new key pair into ``out_dir``: ``<name>.key`` (0600) and ``<name>.pub``.

    Refuses to overwrite either file and to write the private key inside ``lake_root``.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private_path = out_dir / f"{name}.key"
    public_path = out_dir / f"{name}.pub"
    if lake_root is not None and _inside(private_path, lake_root):
        raise RefusedError("refused to write a private key inside the lake root",
                           file=str(private_path), hint="pass --out DIR outside the lake")
    for path in (private_path, public_path):
        if path.exists() or path.is_symlink():
            raise RefusedError("refused to overwrite an existing key file", file=str(path),
                               hint="choose another --out directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    key = Ed25519PrivateKey.generate()
    private_pem = key.private_bytes(serialization.Encoding.PEM,
                                    serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
    public_pem = key.public_key().public_bytes(serialization.Encoding.PEM,
                                               serialization.PublicFormat.SubjectPublicKeyInfo)
    jsonio.atomic_write(private_path, private_pem, mode=0o600)
    jsonio.atomic_write(public_path, public_pem, mode=0o644)
    return GeneratedKey(private_path, public_path, key_id(key.public_key()))


def load_signing_key(path: Path, *, lake_root: Path | None = None,
                     source: str = "signing key") -> SigningKey:
    """A private key that is a regular file, 0600 or stricter, outside the lake, Ed25519.

    Every refusal is an ``InputError`` (exit 2) naming the file; nothing is signed.
    """
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    shown = str(path)
    if not path.is_file():
        raise InputError(f"{source} not found", file=shown,
                         hint="kfm-prov keys generate --out DIR, then point"
                              " KFM_PROV_SIGNING_KEY at DIR/kfm-prov-signing.key")
    if lake_root is not None and _inside(path, lake_root):
        raise InputError(f"refused: the {source} lies inside the lake root, where the lake's"
                         " writers can read it", file=shown,
                         hint="move it outside the lake and generate a new one")
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise InputError(f"refused: the {source} is readable by others (mode"
                         f" {mode:04o})", file=shown, hint=f"chmod 600 {shown}")
    data = _read_small(path, shown)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError) as exc:
        raise InputError(f"not an unencrypted PEM private key: {_short(exc)}",
                         file=shown) from None
    if not isinstance(key, Ed25519PrivateKey):
        raise InputError("the signing key must be Ed25519", file=shown,
                         hint="kfm-prov keys generate makes one")
    return SigningKey(key_id(key.public_key()), shown, key)


def load_public_key(path: Path, *, source: str = "public key") -> PublicKey:
    """An Ed25519 public key from a PEM file (a private key file is refused)."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

    shown = str(path)
    if not path.is_file():
        raise InputError(f"{source} not found", file=shown)
    data = _read_small(path, shown)
    if b"PRIVATE KEY" in data:
        raise InputError(f"this is a private key; give the {source} (.pub)", file=shown)
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, TypeError) as exc:
        raise InputError(f"not a PEM public key: {_short(exc)}", file=shown) from None
    if not isinstance(key, Ed25519PublicKey):
        raise InputError(f"the {source} must be Ed25519", file=shown)
    return PublicKey(key_id(key), shown, key)


def _read_small(path: Path, shown: str) -> bytes:
    if path.stat().st_size > MAX_KEY_BYTES:
        raise InputError("too large for a key file", file=shown)
    return path.read_bytes()


def _inside(path: Path, root: Path) -> bool:
    try:
        resolved = Path(os.path.realpath(path))
        return resolved.is_relative_to(Path(os.path.realpath(root)))
    except OSError:
        return False


def _short(exc: Exception) -> str:
    return " ".join(str(exc).split())[:120] or type(exc).__name__
