"""Shared CLI plumbing: options defined once, JSON to stdout, messages to stderr."""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import click

from kfm_prov.core.findings import Finding

F = TypeVar("F", bound=Callable[..., Any])


def json_option(func: F) -> F:
    """``--json``: one JSON document on stdout instead of text."""
    return click.option("--json", "as_json", is_flag=True,
                        help="Print one JSON document on stdout.")(func)


def get_lake(ctx: click.Context) -> Any:
    """The lake named by ``--root``, ``$KFM_PROV_ROOT`` or the enclosing directory."""
    from kfm_prov.lake import Lake

    return Lake.open(ctx.find_root().params.get("root"))


def emit_json(data: Any) -> None:
    from kfm_prov.core.jsonio import dumps_text  # json.dumps(indent=2)'s text, faster

    click.echo(dumps_text(data))


def info(message: str) -> None:
    """Progress and notes go to stderr so stdout stays data."""
    click.echo(message, err=True)


def report_findings(findings: Sequence[Finding], *, as_json: bool, ok_message: str,
                    extra: dict[str, Any] | None = None) -> int:
    """Print every finding (or the all-clear) and return the exit code: 0 clean, 1 not."""
    if as_json:
        emit_json({"ok": not findings, **(extra or {}),
                   "findings": [f.to_dict() for f in findings]})
    elif findings:
        for finding in findings:
            click.echo(finding.one_line())
    else:
        click.echo(ok_message)
    return 1 if findings else 0


def stdout_is_plain() -> bool:
    """True when stdout is a file or a pipe and nothing asks for a terminal's output.

    rich's own rule (``Console.is_terminal``: TTY_COMPATIBLE, FORCE_COLOR, then isatty),
    decided without importing rich (~25 ms of a cold start); False means "ask rich".
    """
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible in ("0", "1"):
        return tty_compatible == "0"
    force_color = os.environ.get("FORCE_COLOR")
    if force_color is not None:
        return force_color == ""
    try:
        return not sys.stdout.isatty()
    except (AttributeError, ValueError):
        return True


_TWO_DIGITS = re.compile(r"[0-9]{2}")
_EMOJI_LIKE = re.compile(r":(\S*?):")  # rich replaces :name: with an emoji


def _literal(cell: str) -> bool:
    """A cell rich prints as it is: printable ASCII, no markup (``[``), no emoji code
    (a time's ``:52:`` is none: no emoji name is two digits)."""
    return (cell.isascii() and cell.isprintable() and "[" not in cell
            and all(_TWO_DIGITS.fullmatch(m.group(1)) for m in _EMOJI_LIKE.finditer(cell)))


def plain_table(headers: Sequence[str], rows: Sequence[Sequence[str]], *,
                width: int = 220) -> str | None:
    """The text ``Console(width=width).print(Table(*headers, box=None))`` writes off a
    terminal, or None when a cell needs rich (markup, emoji codes, wide or control
    characters, a table wider than ``width``): ``kfm-prov runs`` to a pipe without rich."""
    cells = [list(headers), *[list(row) for row in rows]]
    if not all(_literal(cell) for row in cells for cell in row):
        return None
    widths = [max(len(row[k]) for row in cells) for k in range(len(headers))]
    if sum(w + 2 for w in widths) > width:
        return None
    return "".join("".join(f" {cell.ljust(w)} " for cell, w in zip(row, widths, strict=True))
                   + "\n" for row in cells)


def cwd_display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def error_line(message: str) -> None:
    sys.stderr.write(f"kfm-prov: error: {' '.join(message.split())}\n")
