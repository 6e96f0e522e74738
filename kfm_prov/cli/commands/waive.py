"""``kfm-prov waive``: a steward approves a run's failed gates, with a trail."""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, get_lake, info, json_option


@click.command("waive")
@click.argument("run_id")
@click.option("--gate", "gates", multiple=True, required=True, metavar="NAME",
              help="A failed or waived gate of the run's validation report (repeatable).")
@click.option("--reason", required=True, help="Why the exception is acceptable.")
@click.option("--by", "by", required=True, metavar="WHO", help="Who approves it.")
@click.option("--until", required=True, metavar="DATE",
              help="Last day it holds (YYYY-MM-DD, UTC) or an RFC 3339 time.")
@click.option("--replace", is_flag=True,
              help="Replace an existing waiver (the old one is kept under waivers/).")
@json_option
@click.pass_context
def command(ctx: click.Context, run_id: str, gates: tuple[str, ...], reason: str, by: str,
            until: str, replace: bool, as_json: bool) -> int:
    """Write RUN_ID's waiver.json: which failed gates are accepted, by whom, why, until when.

    The gate then accepts ``pass_with_waiver`` for those gates until the waiver expires.

    \b
    Example:
      kfm-prov waive 01JD7Q8Z --gate topology --reason "slivers under 1 m2, known"
        --by "J. Steward" --until 2027-03-31
    """
    result = get_lake(ctx).waive(run_id, gates, reason=reason, by=by, until=until,
                                 replace=replace)
    if as_json:
        emit_json(result.to_dict())
        return 0
    waiver = result.waiver
    click.echo(f"wrote {result.path}: {', '.join(waiver.gates)} waived by {waiver.approved_by}"
               f" until {waiver.expires_at}")
    if result.replaced:
        info(f"the previous waiver is kept as {result.replaced}")
    return 0
