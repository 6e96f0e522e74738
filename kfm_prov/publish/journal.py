"""The promotion journal: the moves that make a staged version visible, written before any.

A promotion stages every file, writes this journal, then moves the files into place.
Whoever finds a journal (the promoting process, or any later command after a crash)
finishes those moves; without a journal, staging is abandoned and removed. See
``promote._roll_forward``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from kfm_prov.config import LakeConfig
from kfm_prov.core import jsonio

SCHEMA_VERSION = "kfm.journal.v1"
JOURNAL_DIR = "journal"


@dataclass(frozen=True)
class Move:
    """One staged file or directory (name inside the stage) and its root-relative target."""

    staged: str
    target: str

    def to_dict(self) -> dict[str, str]:
        return {"staged": self.staged, "target": self.target}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Move:
        return cls(str(data["staged"]), str(data["target"]))


@dataclass(frozen=True)
class Journal:
    """One promotion transaction. The first move is the version directory."""

    tx: str
    family: str
    version: str
    moves: tuple[Move, ...]
    stage: str  # root-relative staging directory

    def to_dict(self) -> dict[str, Any]:
        return {"schema_version": SCHEMA_VERSION, "tx": self.tx, "family": self.family,
                "version": self.version, "moves": [m.to_dict() for m in self.moves],
                "stage": self.stage}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Journal:
        """Journals written before ``schema_version`` existed read the same."""
        return cls(str(data["tx"]), str(data["family"]), str(data["version"]),
                   tuple(Move.from_dict(m) for m in data["moves"]), str(data["stage"]))

    def certificate(self) -> str:
        """The target of the certificate: what the index is told about at the end."""
        return next(m.target for m in self.moves if m.target.endswith(".certificate.json"))


def journal_dir(config: LakeConfig) -> Path:
    return config.dir("cache") / JOURNAL_DIR


def recovery_pending(config: LakeConfig) -> bool:
    """Whether a promotion may need finishing: a journal or staged files are left over.

    Two directory listings, so ``Lake.open`` imports ``promote`` only when there is work.
    """
    staging = config.dir("staging") / "kfm-prov"
    return any(d.is_dir() and any(d.iterdir()) for d in (journal_dir(config), staging))


def write_journal(config: LakeConfig, journal: Journal) -> Path:
    path = journal_dir(config) / f"{journal.tx}.json"
    jsonio.write_json(path, journal.to_dict())
    return path


def read_journal(path: Path) -> Journal:
    return Journal.from_dict(jsonio.read_json(path, display=path.name))
