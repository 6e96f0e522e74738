"""``kfm-prov init``: lay out a lake."""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, json_option


@click.command("init")
@click.argument("directory", default=".", type=click.Path(file_okay=False))
@json_option
def command(directory: str, as_json: bool) -> int:
    """Create the lake layout and a commented kfm-prov.toml in DIRECTORY (default: here).

    Existing files are left alone, so running it twice is safe.

    \b
    Example:
      kfm-prov init my-lake
    """
    from kfm_prov.lake import Lake

    lake = Lake.init(directory)
    if as_json:
        emit_json({"root": str(lake.root), "paths": lake.config.paths})
    else:
        click.echo(f"initialised lake at {lake.root}")
    return 0
