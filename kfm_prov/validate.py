"""``kfm-prov validate``: schema-check a run directory or a single receipt, every problem."""

from __future__ import annotations

from pathlib import Path

from kfm_prov.core import jsonio
from kfm_prov.core.findings import Finding
from kfm_prov.core.validation import kind_of, validate_data
from kfm_prov.errors import InputError, NotFoundError
from kfm_prov.store.labels import TRAIL
from kfm_prov.store.receipts import check_run_dir, read_receipt

WAIVER = "waiver.json"


def validate_path(path: Path, *, display: str) -> list[Finding]:
    """Findings for a run directory (three receipts + waiver if any) or one receipt file.

    Reads only; an empty list means valid.
    """
    if path.is_dir():
        _, findings = check_run_dir(path, display=display)
        if (path / WAIVER).exists():
            findings.extend(read_receipt(path / WAIVER, "waiver", display=f"{display}/{WAIVER}")[1])
        return findings
    if not path.exists():
        raise NotFoundError("no such file or directory", file=display)
    if path.name == TRAIL:
        return _validate_trail(path, display)
    if path.suffix in (".yml", ".yaml"):
        try:
            data = jsonio.read_yaml(path, display=display)
        except InputError as exc:
            return [Finding("malformed-yaml", exc.message, display)]
        return validate_data(kind_of(path, data), data, file=display)
    try:
        data = jsonio.read_json(path, display=display)
    except InputError as exc:
        return [Finding("malformed-json", exc.message, display, exc.field)]
    return validate_data(kind_of(path, data), data, file=display)


def _validate_trail(path: Path, display: str) -> list[Finding]:
    """A label trail (JSON lines): every line checked, each finding naming its line."""
    findings = []
    for number, line in enumerate(path.read_bytes().splitlines(), 1):
        if not line.strip():
            continue
        try:
            data = jsonio.loads(line, file=display)
        except InputError as exc:
            findings.append(Finding("malformed-json", exc.message, display, f"line {number}"))
            continue
        findings += [Finding(f.code, f.message, display, f"line {number}: {f.pointer}")
                     for f in validate_data("raw_labels", data, file=display)]
    return findings
