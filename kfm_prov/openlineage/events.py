"""One OpenLineage event, checked: the schema, a UUID run id, a time with a zone.

Everything a hostile producer can send is refused here with the JSON pointer of the
problem, before anything is written.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from kfm_prov.core.timeutil import parse_time
from kfm_prov.core.validation import validate_openlineage
from kfm_prov.errors import InputError

TERMINAL = ("COMPLETE", "FAIL", "ABORT")
# Order of events that share a time: the run opens before it runs, and ends last.
_ORDER = {"START": 0, "RUNNING": 1, "OTHER": 2, None: 2, "COMPLETE": 3, "FAIL": 3, "ABORT": 3}


@dataclass(frozen=True)
class Event:
    """A schema-valid event and what kfm-prov reads from it first."""

    data: dict[str, Any]
    digest: str  # sha256 of its canonical JSON: the same event posted twice has one digest
    run_id: str | None  # canonical lowercase UUID; None for dataset and job events
    event_type: str | None
    time: datetime

    @property
    def terminal(self) -> bool:
        return self.event_type in TERMINAL

    def sort_key(self) -> tuple[datetime, int, str]:
        return (self.time, _ORDER.get(self.event_type, 2), self.digest)

    def scrubbed(self) -> tuple[Event, list[dict[str, str]]]:
        """The event with every secret replaced, as it may be written anywhere, and where
        the secrets were (never their values). The digest stays that of the event as sent."""
        from kfm_prov.core.secrets import scrub_data

        clean, found = scrub_data(self.data)
        unique = sorted({(f.location, f.kind) for f in found})
        return (Event(clean, self.digest, self.run_id, self.event_type, self.time),
                [{"location": loc, "kind": kind} for loc, kind in unique])


def event_digest(data: Any) -> str:
    """sha256 of the RFC 8785 canonical JSON (sorted-key JSON where RFC 8785 cannot)."""
    import rfc8785

    from kfm_prov.store.digests import sha256_bytes

    try:
        canonical = rfc8785.dumps(data)
    except (rfc8785.CanonicalizationError, ValueError, TypeError):
        canonical = json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")
    return sha256_bytes(canonical)


def journaled_event(data: dict[str, Any], digest: str) -> Event:
    """An event read back from the journal, where only checked events are written."""
    run_id = str(uuid.UUID(data["run"]["runId"])) if isinstance(data.get("run"), dict) else None
    return Event(data=data, digest=digest, run_id=run_id,
                 event_type=data.get("eventType") if run_id else None,
                 time=parse_time(data["eventTime"]))


def parse_event(data: Any, *, file: str, prefix: str = "") -> Event:
    """Check one event; ``InputError`` names ``file`` and the pointer (under ``prefix``)."""
    findings = validate_openlineage(data, file=file)
    if findings:
        first = findings[0]
        more = f" (and {len(findings) - 1} more)" if len(findings) > 1 else ""
        raise InputError(f"not a valid OpenLineage 2-0-2 event: {first.message}{more}",
                         file=file, field=prefix + (first.pointer or ""))
    time = parse_time(data["eventTime"], file=file, field=f"{prefix}/eventTime")
    if not 1970 <= time.year <= 9999:
        raise InputError("eventTime must lie between 1970 and 9999", file=file,
                         field=f"{prefix}/eventTime")
    try:  # a lone surrogate (JSON allows "\ud800") cannot be written as UTF-8
        json.dumps(data, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise InputError("the event holds a lone UTF-16 surrogate, which is not text",
                         file=file, field=prefix or "/") from None
    run_id = None
    if isinstance(data.get("run"), dict):
        try:
            run_id = str(uuid.UUID(data["run"]["runId"]))
        except (ValueError, TypeError, AttributeError):
            raise InputError("runId must be a UUID", file=file,
                             field=f"{prefix}/run/runId") from None
    job = data.get("job")
    if isinstance(job, dict) and (not job["namespace"].strip() or not job["name"].strip()):
        raise InputError("the job needs a non-empty namespace and name", file=file,
                         field=f"{prefix}/job")
    return Event(data=data, digest=event_digest(data), run_id=run_id,
                 event_type=data.get("eventType") if run_id else None, time=time)
