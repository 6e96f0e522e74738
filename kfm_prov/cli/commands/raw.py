"""``kfm-prov raw add``: record write-once raw captures."""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, get_lake, json_option
from kfm_prov.config import SENSITIVITIES


@click.group("raw")
def command() -> None:
    """Raw captures: the immutable sources every product must trace back to."""


@command.command("add")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--license", "license_", required=True, help="SPDX license id, e.g. CC-BY-4.0.")
@click.option("--attribution", required=True, help="Who must be credited.")
@click.option("--source-uri", help="Where the capture came from.")
@click.option("--source-type", help="What kind of source, e.g. http, api, ftp, manual.")
@click.option("--sensitivity", type=click.Choice(SENSITIVITIES),
              help="public, restricted or sensitive-location (unknown means restricted).")
@json_option
@click.pass_context
def add(ctx: click.Context, paths: tuple[str, ...], license_: str, attribution: str,
        source_uri: str | None, source_type: str | None, sensitivity: str | None,
        as_json: bool) -> int:
    """Record PATHS (files under data/raw/<family>/) in their manifest.yml and checksums.

    Re-adding an unchanged file does nothing; a file whose bytes changed since it was
    recorded is refused (exit 1) and nothing is written, as are bytes some other capture
    recorded at a higher sensitivity, under a lower label (the error names that capture).

    \b
    Example:
      kfm-prov raw add data/raw/parcels/parcels.csv --license CC-BY-4.0 \\
          --attribution "County GIS" --source-uri https://gis.example.org/parcels.csv
    """
    lake = get_lake(ctx)
    results = lake.raw_add(paths, license=license_, attribution=attribution,
                           source_uri=source_uri, source_type=source_type,
                           sensitivity=sensitivity)
    if as_json:
        emit_json([{"path": r.path, "digest": r.digest, "status": r.status,
                    "manifest": r.manifest} for r in results])
    else:
        for r in results:
            click.echo(f"{r.status:9} {r.digest[:19]}…  {r.path}")
    return 0
