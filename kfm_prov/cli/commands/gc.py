"""``kfm-prov gc --keep N``: retention of run directories, a dry run unless ``--apply``."""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, get_lake, info, json_option


@click.command("gc")
@click.option("--keep", required=True, type=click.IntRange(min=0), metavar="N",
              help="Runs to keep whole in each family (the newest N).")
@click.option("--family", "-f", help="Only collect runs of this family.")
@click.option("--apply", "apply_", is_flag=True, help="Delete; without it, only list.")
@click.option("--min-age-hours", type=click.FloatRange(min=0), metavar="H",
              help="Never touch runs younger than this (default: policy.gc_min_age_hours).")
@json_option
@click.pass_context
def command(ctx: click.Context, keep: int, family: str | None, apply_: bool,
            min_age_hours: float | None, as_json: bool) -> int:
    """List (or with --apply, delete) run directories beyond the newest N of each family.

    Never touches data/raw/ or data/processed/, a promoted run or any run in the closure
    of a promoted product, a running run, or a run younger than the minimum age. A run
    goes in order: tmp/, then artifacts/, then its receipts and index rows.

    \b
    Example:
      kfm-prov gc --keep 5               # what would go, and why
      kfm-prov gc --keep 5 --apply
    """
    plan = get_lake(ctx).gc(keep, family=family, apply=apply_, min_age_hours=min_age_hours)
    if as_json:
        emit_json(plan.to_dict())
        return 0
    verb = "deleted" if plan.applied else "would"
    for entry in plan.entries:
        click.echo(f"{verb} {entry.action:16} {entry.run_id} ({entry.family})"
                   f"  {_size(entry.bytes):>9}  {entry.reason}")
    for kept in plan.protected:
        click.echo(f"keep {'':18}{kept.run_id} ({kept.family})  {kept.reason}")
    runs = sum(1 for e in plan.entries if e.action == "delete-run")
    if plan.applied:
        info(f"gc: removed {runs} run(s), freed {_size(plan.bytes)}")
    else:
        info(f"gc (dry run): {runs} run(s) would be removed, {_size(plan.bytes)} freed;"
             " add --apply to delete")
    return 0


def _size(count: int) -> str:
    value = float(count)
    for unit in ("B", "kB", "MB", "GB"):
        if value < 1000 or unit == "GB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1000
    return f"{count} B"
