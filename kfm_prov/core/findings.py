"""A finding: one problem, with a stable code, where it is, and what to do about it.

``validate``, ``record``, ``check`` and ``verify`` collect every finding instead of stopping
at the first, so a user fixes a receipt once, not once per run of the command.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Finding:
    """One problem found by a check: a stable ``code``, what is wrong, and where to look."""

    code: str  # stable, e.g. "schema", "digest-mismatch", "orphan-input"
    message: str
    file: str | None = None  # root-relative where possible
    pointer: str | None = None  # JSON pointer or field name inside ``file``
    hint: str | None = None
    nodes: tuple[str, ...] | None = None  # the lineage path that fails, product last

    def to_dict(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if v is not None}
        if self.nodes is not None:
            out["nodes"] = list(self.nodes)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Finding:
        nodes = data.get("nodes")
        return cls(data["code"], data["message"], data.get("file"), data.get("pointer"),
                   data.get("hint"), tuple(nodes) if nodes is not None else None)

    def one_line(self) -> str:
        where = self.file or ""
        if self.pointer:
            where = f"{where}: {self.pointer}" if where else self.pointer
        text = f"[{self.code}] {self.message}"
        return f"{text} ({where})" if where else text
