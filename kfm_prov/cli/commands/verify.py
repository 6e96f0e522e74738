"""``kfm-prov verify``: the lake-wide audit."""

from __future__ import annotations

from pathlib import Path

import click

from kfm_prov.cli.output import error_line, get_lake, info, json_option, report_findings


@click.command("verify")
@click.option("--require-signatures", is_flag=True,
              help="Fail for a version without a valid signed attestation.")
@click.option("--key", "keys", multiple=True, type=click.Path(dir_okay=False, path_type=Path),
              help="Also trust this public key (PEM); repeatable. Default: [trust] keys.")
@json_option
@click.pass_context
def command(ctx: click.Context, require_signatures: bool, keys: tuple[Path, ...],
            as_json: bool) -> int:
    """Audit the whole lake; write nothing.

    Every raw file still matches its checksums and has the labels its label trail
    gives it (changed only by raw relabel); every processed version matches its
    checksums.sha256 and has its STAC item, PROV bundle, DCAT distribution and a
    certificate that still holds; nothing in processed lacks a promotion; no STAC item
    points at a missing file. Exit 1 with every finding otherwise. Notes (a relabel
    since a version was published, a manifest without a trail) go to stderr and fail
    nothing.

    \b
    Example:
      kfm-prov verify --require-signatures --json
    """
    from kfm_prov.core.keys import load_public_key

    report = get_lake(ctx).verify(require_signatures=require_signatures,
                                  keys=[load_public_key(k) for k in keys])
    checked = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in report.checked.items())
    code = report_findings(report.findings, as_json=as_json,
                           ok_message=f"lake verified: {checked}",
                           extra={"checked": report.checked,
                                  "notes": [n.to_dict() for n in report.notes]})
    if not as_json:
        for note in report.notes:
            info(f"note: {note.one_line()}")
    if code:
        error_line(f"verify found {len(report.findings)} problem(s)"
                   f" ({', '.join(sorted({f.code for f in report.findings}))})")
    return code
