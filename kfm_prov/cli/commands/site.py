"""``kfm-prov site``: the audit site, a static folder of HTML pages."""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, get_lake, info, json_option


@click.command("site")
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--family", "families", multiple=True, metavar="F",
              help="Only this family (repeat for more); default every family.")
@click.option("--include-logs", is_flag=True,
              help="Show an excerpt of each run's (scrubbed) log: for an internal audit site"
                   " only; every page says so.")
@json_option
@click.pass_context
def command(ctx: click.Context, out_dir: str, families: tuple[str, ...], include_logs: bool,
            as_json: bool) -> int:
    """Write a static audit site of every family, version, certificate and lineage graph.

    OUT_DIR is replaced whole (a previous site made by this command, or a new or empty
    folder); open OUT_DIR/index.html from disk or publish the folder on any static host.
    No page loads anything from the network. Products and published records are copied
    in; work files are described, never copied.

    \b
    Example:
      kfm-prov site site/
      kfm-prov site audit/ --family glo_land_patents --include-logs
    """
    lake = get_lake(ctx)
    result = lake.site(out_dir, families, include_logs=include_logs)
    if as_json:
        emit_json(result.to_dict())
    else:
        summary = result.site.to_dict()
        info(f"site: {len(summary['families'])} families, {summary['versions']} versions,"
             f" {summary['runs']} runs, {summary['pages']} files")
        click.echo(result.index)
    return 0
