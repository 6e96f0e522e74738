"""One exception family; the CLI turns each into the one-line error contract.

Every error names the object it is about (``file`` and, where it applies, ``field``) so
that the message alone tells a user where to look. ``exit_code`` follows SPEC §6:
2 for bad usage or input, 1 for a check that failed or a refusal.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kfm_prov.core.findings import Finding


class KfmProvError(Exception):
    """Base of every error kfm-prov raises on purpose."""

    exit_code: int = 2

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        field: str | None = None,
        hint: str | None = None,
        findings: list[Finding] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.file = file
        self.field = field
        self.hint = hint
        self.findings = findings or []

    @classmethod
    def from_findings(cls, message: str, findings: list[Finding]) -> KfmProvError:
        """An error that names the first finding and carries them all (for ``--json``)."""
        first = findings[0]
        more = f" and {len(findings) - 1} more" if len(findings) > 1 else ""
        return cls(f"{message}: {first.message}{more}", file=first.file, field=first.pointer,
                   findings=findings)

    def one_line(self) -> str:
        """``<what> (<file>[: <field>])`` with newlines folded, as SPEC §6 asks."""
        text = self.message
        where = self.file or ""
        if self.field:
            where = f"{where}: {self.field}" if where else self.field
        if where:
            text = f"{text} ({where})"
        if self.hint:
            text = f"{text}; {self.hint}"
        return " ".join(text.split())


class InputError(KfmProvError):
    """Bad input: malformed files, missing fields, unsafe paths, unknown names (exit 2)."""

    exit_code = 2


class UsageError(InputError):
    """The command line or API call itself is wrong (exit 2)."""


class NotFoundError(InputError):
    """A named run, artifact, root or file does not exist (exit 2)."""


class CheckFailed(KfmProvError):
    """A check ran and did not pass: a digest mismatch, a refused gate (exit 1)."""

    exit_code = 1


class RefusedError(CheckFailed):
    """An action was refused to protect the lake: raw rewrite, version overwrite (exit 1)."""
