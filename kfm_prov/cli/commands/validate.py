"""``kfm-prov validate``: schema-check receipts."""

from __future__ import annotations

from pathlib import Path

import click

from kfm_prov.cli.output import json_option, report_findings


@click.command("validate")
@click.argument("target", type=click.Path())
@json_option
@click.pass_context
def command(ctx: click.Context, target: str, as_json: bool) -> int:
    """Validate a run directory's receipts, or one receipt file, against the schemas.

    Reports every problem as file, JSON pointer and what was expected; exit 1 if any.

    \b
    Example:
      kfm-prov validate data/work/runs/parcels/01JD0XAMPLE0000000000000000
    """
    from kfm_prov.validate import validate_path

    path = Path(target)
    findings = validate_path(path.absolute(), display=target)
    return report_findings(findings, as_json=as_json, ok_message=f"{target}: valid",
                           extra={"target": target})
