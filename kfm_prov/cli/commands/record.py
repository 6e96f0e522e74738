"""``kfm-prov record RUN_DIR``: take in receipts a pipeline wrote itself."""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, get_lake, json_option


@click.command("record")
@click.argument("run_dir", type=click.Path(file_okay=False))
@json_option
@click.pass_context
def command(ctx: click.Context, run_dir: str, as_json: bool) -> int:
    """Validate RUN_DIR's receipts, re-hash what they name, write prov.json and index it.

    Refuses (exit 1) when a recorded digest does not match its file or a receipt holds a
    secret, naming each; exit 2 when the receipts do not validate. This is the hook a
    scheduler calls after each pipeline run.

    \b
    Example:
      kfm-prov record data/work/runs/kansas_memory/01JD7Q8ZK3M4N5P6Q7R8S9T0VW
    """
    lake = get_lake(ctx)
    result = lake.record(run_dir)
    if as_json:
        emit_json(result.__dict__)
    else:
        click.echo(f"recorded run {result.run_id} ({result.status}, validation"
                   f" {result.overall_status}): {result.prov}")
    return 0
