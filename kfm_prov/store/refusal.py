"""The refusal receipt: what a refused promotion asked for, what was checked, what failed.

Written into the run's ``refusals/`` directory (the only thing a refusal writes), so a
steward can see later why a product did not reach ``data/processed``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from kfm_prov.core.findings import Finding
from kfm_prov.store.certificate import CheckOutcome

SCHEMA_VERSION = "kfm.refusal.v1"
REFUSALS_DIR = "refusals"


@dataclass(frozen=True)
class Refusal:
    """``kfm.refusal.v1``; ``from_dict(d).to_dict() == d`` (unknown keys kept)."""

    _KEYS = ("schema_version", "run_id", "refused_at", "requested", "checks", "findings")

    run_id: str
    refused_at: str
    requested: dict[str, Any]
    checks: tuple[CheckOutcome, ...]
    findings: tuple[Finding, ...]
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {**self.extra, "schema_version": SCHEMA_VERSION, "run_id": self.run_id,
                "refused_at": self.refused_at, "requested": self.requested,
                "checks": [c.to_dict() for c in self.checks],
                "findings": [f.to_dict() for f in self.findings]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Refusal:
        return cls(data["run_id"], data["refused_at"], dict(data["requested"]),
                   tuple(CheckOutcome.from_dict(c) for c in data["checks"]),
                   tuple(Finding.from_dict(f) for f in data["findings"]),
                   {k: v for k, v in data.items() if k not in cls._KEYS})

    def rel(self, run_dir: str, unique: str) -> str:
        """Where it is written: ``<run>/refusals/<time>-<unique>.json``, sortable by time."""
        return f"{run_dir}/{REFUSALS_DIR}/{self.refused_at[:19].replace(':', '')}-{unique}.json"
