"""``kfm-prov prov-check``: is a PROV document valid under PROV-CONSTRAINTS?"""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, error_line, json_option


@click.command("prov-check")
@click.argument("file", type=click.Path(dir_okay=False))
@json_option
def command(file: str, as_json: bool) -> int:
    """Check any PROV document against W3C PROV-CONSTRAINTS (and, for PROV-JSON, its schema).

    FILE is PROV-JSON (.json), PROV-XML (.xml, .provx), PROV-N (.provn), PROV-JSONLD
    (.jsonld) or PROV-O (.ttl, .trig, .rdf, .nt, .nq); other names are sniffed. Each
    violated constraint is reported by its number (C30 ... C56) with the records involved.
    Exit 0 valid, 1 invalid, 2 unreadable. Needs no lake.

    \b
    Example:
      kfm-prov prov-check data/raw/parcels/provider-prov.json
    """
    from pathlib import Path

    from kfm_prov.verify import check_prov_document

    result = check_prov_document(Path(file))
    if as_json:
        emit_json(result.to_dict())
    elif result.ok:
        click.echo(f"{file}: valid PROV ({result.summary})")
    else:
        for violation in result.violations:
            text = violation.message
            if not text.startswith(violation.constraint):
                text = f"{violation.constraint} {text}"
            records = ", ".join(violation.records)
            click.echo(f"{text} (records: {records})" if records else text)
    if not result.ok:
        error_line(f"{file} is not valid PROV: {len(result.violations)} violation(s)"
                   f" ({', '.join(result.constraints)})")
    return 0 if result.ok else 1
