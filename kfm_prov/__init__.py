"""kfm-prov: provenance, a fail-closed promotion gate and publication for a governed data lake.

The public API is what ``__all__`` lists; start with ``Lake``::

    from kfm_prov import Lake

    lake = Lake.open("path/to/lake")
    with lake.capture("glo", "pipelines/glo/normalise") as run:
        run.use("data/raw/glo/patents.csv")
        run.output("normalised.csv").write_text("...")

Names are imported on first use (module ``__getattr__``), so ``import kfm_prov`` and
``kfm-prov --help`` stay instant; everything not in ``__all__`` is private by convention.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"

# public name → the module that defines it (imported when the name is first asked for)
_PUBLIC: dict[str, str] = {
    "Lake": "kfm_prov.lake",
    "Run": "kfm_prov.capture",
    "RecordedRun": "kfm_prov.record",
    "RunRow": "kfm_prov.store.index",
    "GateReport": "kfm_prov.gate",
    "Finding": "kfm_prov.core.findings",
    "PromotionResult": "kfm_prov.publish.promote",
    "Trace": "kfm_prov.trace",
    "VerifyReport": "kfm_prov.verify",
    "Scope": "kfm_prov.export",
    "Exported": "kfm_prov.export",
    "GcPlan": "kfm_prov.gc",
    "KfmProvError": "kfm_prov.errors",
    "InputError": "kfm_prov.errors",
    "UsageError": "kfm_prov.errors",
    "NotFoundError": "kfm_prov.errors",
    "CheckFailed": "kfm_prov.errors",
    "RefusedError": "kfm_prov.errors",
}

__all__ = [
    "CheckFailed",
    "Exported",
    "Finding",
    "GateReport",
    "GcPlan",
    "InputError",
    "KfmProvError",
    "Lake",
    "NotFoundError",
    "PromotionResult",
    "RecordedRun",
    "RefusedError",
    "Run",
    "RunRow",
    "Scope",
    "Trace",
    "UsageError",
    "VerifyReport",
]

if TYPE_CHECKING:  # for type checkers and editors; at run time __getattr__ does it
    from kfm_prov.capture import Run
    from kfm_prov.core.findings import Finding
    from kfm_prov.errors import (
        CheckFailed,
        InputError,
        KfmProvError,
        NotFoundError,
        RefusedError,
        UsageError,
    )
    from kfm_prov.export import Exported, Scope
    from kfm_prov.gate import GateReport
    from kfm_prov.gc import GcPlan
    from kfm_prov.lake import Lake
    from kfm_prov.publish.promote import PromotionResult
    from kfm_prov.record import RecordedRun
    from kfm_prov.store.index import RunRow
    from kfm_prov.trace import Trace
    from kfm_prov.verify import VerifyReport


def __getattr__(name: str) -> Any:
    """Import a public name from its module on first use and keep it here."""
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'kfm_prov' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
