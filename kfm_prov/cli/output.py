"""Shared CLI plumbing: options defined once, JSON to stdout, messages to stderr."""

from __future__ import annotations

import os
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


def cwd_display(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:
        return str(path)


def error_line(message: str) -> None:
    sys.stderr.write(f"kfm-prov: error: {' '.join(message.split())}\n")
