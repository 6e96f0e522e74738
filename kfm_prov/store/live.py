"""Live markers: one small file per run whose capturing process may still be running.

Kept apart from ``capture`` so that every command can ask "is any run marked live?" with
one directory listing, and import the capture machinery only when one is.
"""

from __future__ import annotations

from pathlib import Path

from kfm_prov.config import LakeConfig

LIVE_DIR = "live"


def live_dir(config: LakeConfig) -> Path:
    return config.dir("cache") / LIVE_DIR


def live_marker(config: LakeConfig, run_id: str) -> Path:
    return live_dir(config) / f"{run_id}.json"


def live_markers(config: LakeConfig) -> list[Path]:
    """The markers present now, sorted; none when the directory does not exist."""
    folder = live_dir(config)
    return sorted(folder.glob("*.json")) if folder.is_dir() else []
