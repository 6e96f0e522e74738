"""``kfm-prov index rebuild``: recreate the lineage index from the files."""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, get_lake, info, json_option


@click.group("index")
def command() -> None:
    """The lineage index (disposable: it can always be rebuilt from receipts)."""


@command.command("rebuild")
@json_option
@click.pass_context
def rebuild(ctx: click.Context, as_json: bool) -> int:
    """Rebuild the index from run receipts, raw manifests and promotion records.

    Runs that cannot be read are skipped and listed (exit 0: the index is still usable).

    \b
    Example:
      kfm-prov index rebuild
    """
    result = get_lake(ctx).rebuild_index()
    if as_json:
        emit_json({"runs": result.runs, "raw_files": result.raw_files,
                   "skipped": [f.to_dict() for f in result.skipped]})
        return 0
    for finding in result.skipped:
        info(f"skipped: {finding.one_line()}")
    click.echo(f"indexed {result.runs} runs and {result.raw_files} raw files")
    return 0
