"""Timestamps: RFC 3339 in UTC with microseconds, so ordering checks can tell runs apart."""

from __future__ import annotations

from datetime import UTC, datetime

from kfm_prov.errors import InputError


def now_utc() -> str:
    return format_time(datetime.now(UTC))


def format_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def parse_time(value: str, *, file: str | None = None, field: str | None = None) -> datetime:
    """Parse an RFC 3339 timestamp; a naive one is refused (its zone would be a guess)."""
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except (TypeError, ValueError, AttributeError):
        raise InputError(f"not an RFC 3339 timestamp: {value!r}", file=file, field=field) from None
    if moment.tzinfo is None:
        raise InputError(f"timestamp has no time zone: {value!r}", file=file, field=field)
    return moment
