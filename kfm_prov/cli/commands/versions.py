"""``kfm-prov versions``: the promoted versions of a family, or of every family."""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, get_lake, json_option


@click.command("versions")
@click.argument("family", required=False)
@json_option
@click.pass_context
def command(ctx: click.Context, family: str | None, as_json: bool) -> int:
    """List promoted versions: when, from which run, which products, by whom, signed or not.

    \b
    Example:
      kfm-prov versions glo_land_patents
    """
    rows = get_lake(ctx).versions(family)
    if as_json:
        emit_json([v.to_dict() for v in rows])
        return 0
    for v in rows:
        signed = "signed" if v.attestation else "unsigned"
        who = f" by {v.promoted_by}" if v.promoted_by else ""
        click.echo(f"{v.family} {v.version}  {v.promoted_at[:19]}  run {v.run_id}{who}"
                   f"  {signed}")
        if v.problem:
            click.echo(f"    problem: {v.problem} (kfm-prov verify)")
        for product in v.products:
            origin = product.get("carried_from")
            carried = (f"  (carried from {origin['version']}, run {origin['run_id']})"
                       if origin else "")
            click.echo(f"    {product['digest'][:19]}…  {product.get('sensitivity', '?'):18}"
                       f" {product['path']}{carried}")
    return 0
