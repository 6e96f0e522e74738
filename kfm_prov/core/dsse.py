"""DSSE envelopes (https://github.com/secure-systems-lab/dsse, v1) and in-toto JSON Lines.

The signature covers the PAE (pre-authentication encoding) of the payload type and the
payload bytes, never a re-serialisation, so a verifier checks exactly the bytes that were
signed. ``.intoto.jsonl`` holds one envelope per line (the in-toto bundle format).
The only crypto here is calling ``cryptography``'s Ed25519 through ``core.keys``.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfm_prov.core import jsonio
from kfm_prov.core.keys import PublicKey, SigningKey
from kfm_prov.errors import CheckFailed, InputError

PAYLOAD_TYPE = "application/vnd.in-toto+json"
MAX_JSONL_BYTES = 64 * 1024 * 1024


def pae(payload_type: str, payload: bytes) -> bytes:
    """``DSSEv1 SP LEN(type) SP type SP LEN(body) SP body`` (lengths in ASCII decimal)."""
    kind = payload_type.encode("utf-8")
    return b"DSSEv1 %d %s %d %s" % (len(kind), kind, len(payload), payload)


def sign(payload: bytes, key: SigningKey, payload_type: str = PAYLOAD_TYPE) -> dict[str, Any]:
    """A DSSE envelope with one signature by ``key``."""
    signature = key.sign(pae(payload_type, payload))
    return {"payload": base64.b64encode(payload).decode("ascii"),
            "payloadType": payload_type,
            "signatures": [{"keyid": key.keyid,
                            "sig": base64.b64encode(signature).decode("ascii")}]}


@dataclass(frozen=True)
class Verified:
    """The payload of an envelope and the trusted key that signed it."""

    payload: bytes
    statement: dict[str, Any]
    keyid: str


def verify(envelope: Mapping[str, Any], trusted: Sequence[PublicKey], *,
           file: str, line: int) -> Verified:
    """Check one envelope against the trusted keys; the statement it carries.

    ``CheckFailed`` (exit 1) when no signature verifies under a trusted key; ``InputError``
    when the envelope is malformed. Both name ``file`` and the line.
    """
    where = f"line {line}"
    if not isinstance(envelope, Mapping):
        raise InputError("not a DSSE envelope (a JSON object)", file=file, field=where)
    payload_type = envelope.get("payloadType")
    if payload_type != PAYLOAD_TYPE:
        raise InputError(f"payloadType must be {PAYLOAD_TYPE!r}", file=file, field=where)
    payload = _b64(envelope.get("payload"), file, f"{where}: payload")
    signatures = envelope.get("signatures")
    if not isinstance(signatures, list) or not signatures:
        raise InputError("the envelope has no signatures", file=file, field=where)
    message = pae(payload_type, payload)
    by_id = {k.keyid: k for k in trusted}
    offered = []
    for number, entry in enumerate(signatures):
        if not isinstance(entry, Mapping):
            raise InputError("malformed signature entry", file=file,
                             field=f"{where}: signatures/{number}")
        sig = _b64(entry.get("sig"), file, f"{where}: signatures/{number}/sig")
        keyid = entry.get("keyid")
        offered.append(str(keyid))
        # Try the named key first, then every trusted key (keyid is only a hint in DSSE).
        candidates = ([by_id[keyid]] if isinstance(keyid, str) and keyid in by_id else []) \
            + [k for k in trusted if k.keyid != keyid]
        for key in candidates:
            if key.verify(sig, message):
                return Verified(payload, _statement(payload, file, where), key.keyid)
    if not trusted:
        raise CheckFailed("no trusted public key to check the signature with", file=file,
                          field=where, hint="list public keys in [trust] keys, or pass --key")
    if not any(k in by_id for k in offered):
        raise CheckFailed(f"signed by an untrusted key ({', '.join(k[:16] for k in offered)})",
                          file=file, field=where,
                          hint="add its public key to [trust] keys if you trust it")
    raise CheckFailed("the signature does not verify: the statement was altered after"
                      " signing", file=file, field=where)


def _statement(payload: bytes, file: str, where: str) -> dict[str, Any]:
    data = jsonio.loads(payload, file=f"{file}: {where}: payload")
    if not isinstance(data, dict):
        raise InputError("the payload is not an in-toto statement", file=file, field=where)
    return data


def _b64(value: object, file: str, field: str) -> bytes:
    if not isinstance(value, str):
        raise InputError("must be a base64 string", file=file, field=field)
    try:
        return base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        try:  # DSSE allows URL-safe base64 too
            return base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
        except (binascii.Error, ValueError):
            raise InputError("not valid base64", file=file, field=field) from None


def render_jsonl(envelopes: Sequence[Mapping[str, Any]]) -> bytes:
    """One envelope per line, keys sorted, no spaces: stable bytes for a stable input."""
    return b"".join(json.dumps(e, sort_keys=True, separators=(",", ":")).encode("utf-8")
                    + b"\n" for e in envelopes)


def read_jsonl(path: Path, *, display: str) -> list[dict[str, Any]]:
    """The envelopes of an ``.intoto.jsonl``; a truncated or non-JSON line is an error.

    ``InputError`` naming the file and line: an empty file, a line that is not JSON (a
    file cut short ends in one), or a last line without its newline.
    """
    if not path.is_file():
        raise InputError("attestation not found", file=display)
    if path.stat().st_size > MAX_JSONL_BYTES:
        raise InputError("attestation too large", file=display)
    data = path.read_bytes()
    if not data.strip():
        raise InputError("the attestation is empty", file=display)
    if not data.endswith(b"\n"):
        raise InputError("the attestation is truncated: the last line has no end",
                         file=display)
    envelopes = []
    for number, line in enumerate(data.split(b"\n")[:-1], start=1):
        if not line.strip():
            continue
        try:
            value = jsonio.loads(line, file=display)
        except InputError as exc:
            raise InputError(f"line {number} is not JSON ({exc.message})", file=display,
                             field=f"line {number}") from None
        if not isinstance(value, dict):
            raise InputError("not a DSSE envelope (a JSON object)", file=display,
                             field=f"line {number}")
        envelopes.append(value)
    return envelopes
