"""``kfm-prov export``: PROV for external catalogs, in six serializations."""

from __future__ import annotations

import click

from kfm_prov.cli.output import get_lake, info
from kfm_prov.export import FORMATS, JSONLD_CONTEXTS


@click.command("export")
@click.option("--family", "-f", help="Every run and promoted version of this family.")
@click.option("--run", "-r", "run_id", help="One run's PROV document (id or unique prefix).")
@click.option("--artifact", "-a", help="The lineage of a path, digest, run or STAC item.")
@click.option("--format", "fmt", type=click.Choice((*FORMATS, "openlineage")),
              default="prov-json", show_default=True,
              help="Serialization; openlineage: RunEvents as JSON Lines.")
@click.option("--jsonld-context", type=click.Choice(JSONLD_CONTEXTS), default="url",
              show_default=True,
              help="JSON-LD: reference the PROV-JSONLD context by URL, or embed it for"
                   " offline readers.")
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="Write to this file (atomically) instead of stdout.")
@click.option("--emit", "emit_url", metavar="URL",
              help="openlineage: POST the events to this OpenLineage receiver instead"
                   " (API key from $OPENLINEAGE_API_KEY).")
@click.pass_context
def command(ctx: click.Context, family: str | None, run_id: str | None,
            artifact: str | None, fmt: str, jsonld_context: str, output: str | None,
            emit_url: str | None) -> int:
    """Export the lake's PROV (or one family's, run's or artifact's) for external catalogs.

    Each run document and each promotion bundle becomes a named bundle (a named graph in
    TriG). PROV-O output (turtle, trig) also carries the direct relations such as
    prov:wasDerivedFrom. JSON-LD references the PROV-JSONLD context by URL, as the
    PROV-JSONLD schema expects; --jsonld-context embed inlines it for offline readers.

    \b
    Example:
      kfm-prov export --family parcels --format trig -o parcels-prov.trig
      kfm-prov export --artifact parcels-v2 --format jsonld
      kfm-prov export --family parcels --format openlineage --emit http://marquez:5000
      kfm-prov export --format jsonld --jsonld-context embed -o lake.jsonld
    """
    from pathlib import Path

    from kfm_prov.export import Scope

    lake = get_lake(ctx)
    scope = Scope(family=family, run=run_id, artifact=artifact)
    if emit_url is not None and fmt != "openlineage":
        from kfm_prov.errors import UsageError

        raise UsageError("--emit goes with --format openlineage", field="--emit")
    if fmt == "openlineage":
        import os

        from kfm_prov.openlineage.emit import emit, export_events, to_jsonl

        events = export_events(lake.config, scope)
        if emit_url is not None:
            sent = emit(events, emit_url, api_key=os.environ.get("OPENLINEAGE_API_KEY"))
            info(f"posted {sent} OpenLineage event(s) to {emit_url}")
            return 0
        data = to_jsonl(events)
        if output is None:
            click.echo(data, nl=False)
            return 0
        from kfm_prov.core import jsonio

        target = Path(output)
        jsonio.atomic_write(target if target.is_absolute() else Path.cwd() / target, data)
        info(f"wrote {output}: {len(events)} OpenLineage event(s)")
        return 0
    result = lake.export(scope, fmt, jsonld_context=jsonld_context)
    for note in result.notes:
        info(f"kfm-prov: note: {note}")
    if output is None:
        click.echo(result.data, nl=False)  # bytes go to the binary stream as they are
        return 0
    from kfm_prov.core import jsonio

    target = Path(output)
    jsonio.atomic_write(target if target.is_absolute() else Path.cwd() / target, result.data)
    info(f"wrote {output}: {len(result.sources.runs)} run document(s),"
         f" {len(result.sources.bundles)} promotion bundle(s), {fmt}")
    return 0
