"""``kfm-prov verify``: the lake-wide audit."""

from __future__ import annotations

import click

from kfm_prov.cli.output import error_line, get_lake, json_option, report_findings


@click.command("verify")
@json_option
@click.pass_context
def command(ctx: click.Context, as_json: bool) -> int:
    """Audit the whole lake; write nothing.

    Every raw file still matches its checksums; every processed version matches its
    checksums.sha256 and has its STAC item, PROV bundle, DCAT distribution and a
    certificate that still holds; nothing in processed lacks a promotion; no STAC item
    points at a missing file. Exit 1 with every finding otherwise.

    \b
    Example:
      kfm-prov verify --json
    """
    report = get_lake(ctx).verify()
    checked = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report.checked.items())
    code = report_findings(report.findings, as_json=as_json,
                           ok_message=f"lake verified: {checked}",
                           extra={"checked": report.checked})
    if code:
        error_line(f"verify found {len(report.findings)} problem(s)"
                   f" ({', '.join(sorted({f.code for f in report.findings}))})")
    return code
