"""kfm-prov: provenance, a fail-closed promotion gate and publication for a governed data lake."""

from __future__ import annotations

__version__ = "0.1.0"
