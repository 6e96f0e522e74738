"""``kfm-prov trace``: where an artifact came from, or everything derived from it."""

from __future__ import annotations

import click

from kfm_prov.cli.output import error_line, get_lake, json_option, stdout_is_plain
from kfm_prov.errors import UsageError
from kfm_prov.trace import FORMATS, RANKDIRS, SHOWN_PATHS


@click.command("trace")
@click.argument("artifact")
@click.option("--down", is_flag=True,
              help="Trace downstream: every work and processed file and STAC item derived"
                   " from ARTIFACT.")
@click.option("--verify", is_flag=True,
              help="Re-hash every file of the lineage and mark each that no longer matches.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="tree", show_default=True,
              help="tree, the JSON lineage (kfm.lineage.v1), a PROV-JSON document, Graphviz"
                   " DOT or a Mermaid flowchart.")
@click.option("--rankdir", type=click.Choice(RANKDIRS), default="TB", show_default=True,
              help="dot and mermaid: the direction the graph reads in (TB top to bottom,"
                   " LR left to right).")
@click.option("--all-paths", is_flag=True,
              help="dot and mermaid: name every path of each file's bytes, not the first"
                   f" {SHOWN_PATHS}.")
@json_option
@click.pass_context
def command(ctx: click.Context, artifact: str, down: bool, verify: bool, fmt: str,
            rankdir: str, all_paths: bool, as_json: bool) -> int:
    """Show the lineage of ARTIFACT back to its raw sources (or --down to its products).

    ARTIFACT is a path in any zone, a sha256: digest, a run id (or a unique prefix), or a
    STAC item (its id or its file). Runs show pipeline, commit, time, status and
    validation; raw sources their license and attribution. Exit 1 when the lineage is
    broken (or, with --verify, a file changed); 2 for an unknown artifact.

    \b
    Example:
      kfm-prov trace data/processed/parcels/v2/parcels.geojson
      kfm-prov trace data/raw/parcels/parcels.csv --down
      kfm-prov trace parcels-v2 --format mermaid > lineage.mmd
      kfm-prov trace parcels-v2 --format dot --rankdir LR | dot -Tsvg > lineage.svg
    """
    if as_json and fmt not in ("tree", "json"):
        raise UsageError(f"--json and --format {fmt} do not go together", field="--json")
    fmt = "json" if as_json else fmt
    lake = get_lake(ctx)
    result = lake.trace(artifact, down=down, verify=verify)
    if fmt == "tree":
        from kfm_prov.trace import render_tree

        if stdout_is_plain():  # a file or a pipe: plain text, one line per node, never wrapped
            click.echo(render_tree(result), nl=False)
        else:
            from rich.console import Console

            from kfm_prov.trace import tree

            console = Console(highlight=False)
            if console.is_terminal:
                console.print(tree(result))
            else:
                click.echo(render_tree(result), nl=False)
    else:
        from kfm_prov.trace import render

        click.echo(render(lake.config, result, fmt, rankdir=rankdir, all_paths=all_paths),
                   nl=False)
    if result.ok:
        return 0
    codes = ", ".join(sorted({i.code for i in result.issues}))
    what = "does not match" if {i.code for i in result.issues} == {"file-modified"} \
        else "is broken"
    error_line(f"the lineage of {artifact} {what}: {len(result.issues)} problem(s): {codes}")
    return 1
