"""``kfm-prov waive``: a steward approves a run's failed gates, with a trail.

A run whose validation is ``pass_with_waiver`` (or ``fail`` with gates a steward accepts)
is promotable only with a ``waiver.json`` that names every failed or waived gate, who
approved it, why, and until when. This writes that file through the typed ``Waiver``
record, validated against its schema, atomically; a waiver it replaces is kept under
``waivers/`` so the history of decisions stays with the run.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, time

from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio
from kfm_prov.core.timeutil import format_time, now_utc, parse_time
from kfm_prov.core.validation import validate_data
from kfm_prov.errors import InputError, RefusedError, UsageError
from kfm_prov.store.rebuild import index_for
from kfm_prov.store.receipts import WAIVER_FILE, Waiver, load_run_receipts

HISTORY_DIR = "waivers"


@dataclass(frozen=True)
class WaiveResult:
    waiver: Waiver
    path: str  # root-relative waiver.json
    replaced: str | None  # where the waiver it replaced was kept

    def to_dict(self) -> dict[str, object]:
        return {"waiver": self.waiver.to_dict(), "path": self.path, "replaced": self.replaced}


def waive(config: LakeConfig, run: str, gates: Sequence[str], *, reason: str, by: str,
          until: str, replace: bool = False, now: datetime | None = None) -> WaiveResult:
    """Write ``waiver.json`` for ``run`` (an id or unique prefix). Mutates only that file
    (and ``waivers/`` when it replaces one); refuses without writing anything otherwise."""
    with index_for(config) as index:
        row = index.resolve_run(run)
    waiver_rel = f"{row.run_dir}/{WAIVER_FILE}"
    if not reason.strip():
        raise UsageError("a waiver needs a reason", field="--reason")
    if not by.strip():
        raise UsageError("a waiver names who approves it", field="--by")
    moment = now or datetime.now(UTC)
    expires = _until(until, moment)
    receipts = load_run_receipts(config.root / row.run_dir, display=row.run_dir)
    open_gates = sorted(g.name for g in receipts.report.gates if g.status in ("fail", "waived"))
    wanted = sorted(dict.fromkeys(gates))
    if not wanted:
        raise UsageError("name the gate(s) to waive with --gate", field="--gate",
                         hint=f"failed or waived here: {', '.join(open_gates) or 'none'}")
    unknown = [g for g in wanted if g not in open_gates]
    if unknown:
        raise InputError(f"run {row.run_id} has no failed or waived gate {unknown[0]!r}",
                         file=f"{row.run_dir}/validation_report.json", field="--gate",
                         hint=f"failed or waived here: {', '.join(open_gates) or 'none'}")
    path = config.root / waiver_rel
    if path.exists() and not replace:
        raise RefusedError("the run has a waiver already", file=waiver_rel,
                           hint="--replace keeps the old one under waivers/ and writes anew")
    waiver = Waiver(run_id=row.run_id, approved_by=by.strip(), reason=reason.strip(),
                    gates=wanted, expires_at=expires, approved_at=format_time(moment))
    problems = validate_data("waiver", waiver.to_dict(), file=waiver_rel)
    if problems:
        raise InputError.from_findings("the waiver would not validate", problems)
    kept = None
    if path.exists():
        old = path.read_bytes()
        kept = (f"{row.run_dir}/{HISTORY_DIR}/"
                f"{format_time(moment)[:19].replace(':', '')}-{WAIVER_FILE}")
        jsonio.atomic_write(config.root / kept, old)
    jsonio.write_json(path, waiver.to_dict())
    return WaiveResult(waiver, waiver_rel, kept)


def _until(text: str, now: datetime) -> str:
    """``YYYY-MM-DD`` (valid through that day, UTC) or an RFC 3339 time; in the future."""
    try:
        if len(text.strip()) == 10:
            day = datetime.strptime(text.strip(), "%Y-%m-%d").date()
            moment = datetime.combine(day, time(23, 59, 59), tzinfo=UTC)
        else:
            moment = parse_time(text.strip())
    except (ValueError, InputError):
        raise UsageError(f"--until {text!r} is not a date (YYYY-MM-DD) or an RFC 3339 time",
                         field="--until") from None
    if moment <= now:
        raise UsageError(f"--until {text!r} is not in the future", field="--until",
                         hint=f"it is {now_utc()[:10]} now")
    return format_time(moment)
