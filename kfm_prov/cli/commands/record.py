"""``kfm-prov record RUN_DIR``: take in receipts a pipeline wrote itself."""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, get_lake, json_option


@click.command("record")
@click.argument("run_dir", required=False, type=click.Path(file_okay=False))
@click.option("--openlineage", "events_file", type=click.Path(dir_okay=False, exists=True),
              help="Record the runs of OpenLineage events in this JSON Lines file instead.")
@json_option
@click.pass_context
def command(ctx: click.Context, run_dir: str | None, events_file: str | None,
            as_json: bool) -> int:
    """Validate RUN_DIR's receipts, re-hash what they name, write prov.json and index it.

    Refuses (exit 1) when a recorded digest does not match its file or a receipt holds a
    secret, naming each; exit 2 when the receipts do not validate. This is the hook a
    scheduler calls after each pipeline run. With --openlineage, the events a producer
    wrote with the OpenLineage file transport are checked (all of them first), journaled,
    and every run that ended becomes a recorded run, as `kfm-prov serve` would record it.

    \b
    Example:
      kfm-prov record data/work/runs/kansas_memory/01JD7Q8ZK3M4N5P6Q7R8S9T0VW
      kfm-prov record --openlineage events.jsonl
    """
    from kfm_prov.errors import UsageError

    if (run_dir is None) == (events_file is None):
        raise UsageError("give either RUN_DIR or --openlineage FILE", field="RUN_DIR")
    lake = get_lake(ctx)
    if events_file is not None:
        accepted = lake.record_openlineage(events_file)
        if as_json:
            emit_json([a.to_dict() for a in accepted])
            return 0
        recorded = [a.recorded for a in accepted if a.recorded is not None]
        for run in recorded:
            click.echo(f"recorded run {run.run_id} ({run.status}, validation"
                       f" {run.overall_status}): {run.prov}")
        duplicates = sum(a.duplicate for a in accepted)
        click.echo(f"{len(accepted)} event(s), {duplicates} already received,"
                   f" {len(recorded)} run(s) recorded", err=True)
        refused = [a for a in accepted if a.refused]
        for item in refused:
            click.echo(f"kfm-prov: error: run {item.run_id} not recorded: {item.refused}",
                       err=True)
        return 1 if refused else 0
    assert run_dir is not None
    result = lake.record(run_dir)
    if as_json:
        emit_json(result.__dict__)
    else:
        click.echo(f"recorded run {result.run_id} ({result.status}, validation"
                   f" {result.overall_status}): {result.prov}")
    return 0
