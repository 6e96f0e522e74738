"""``kfm-prov raw add`` / ``relabel`` / ``adopt``: record write-once raw captures, change
labels, begin the label trail of manifests made before trails."""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, get_lake, info, json_option
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
@click.option("--by", "by", metavar="WHO", help="Who records them, for the label trail"
              " (default: the user).")
@json_option
@click.pass_context
def add(ctx: click.Context, paths: tuple[str, ...], license_: str, attribution: str,
        source_uri: str | None, source_type: str | None, sensitivity: str | None,
        by: str | None, as_json: bool) -> int:
    """Record PATHS (files under data/raw/<family>/) in their manifest.yml and checksums.

    Re-adding an unchanged file does nothing; a file whose bytes changed since it was
    recorded is refused (exit 1) and nothing is written, as are bytes some other capture
    recorded at a higher sensitivity, under a lower label (the error names that capture).
    An unchanged file given other labels is an error (exit 2): use ``raw relabel``.

    \b
    Example:
      kfm-prov raw add data/raw/parcels/parcels.csv --license CC-BY-4.0 \\
          --attribution "County GIS" --source-uri https://gis.example.org/parcels.csv
    """
    lake = get_lake(ctx)
    results = lake.raw_add(paths, license=license_, attribution=attribution,
                           source_uri=source_uri, source_type=source_type,
                           sensitivity=sensitivity, by=by)
    if as_json:
        emit_json([{"path": r.path, "digest": r.digest, "status": r.status,
                    "manifest": r.manifest} for r in results])
    else:
        for r in results:
            click.echo(f"{r.status:9} {r.digest[:19]}…  {r.path}")
    return 0


@command.command("relabel")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--sensitivity", type=click.Choice(SENSITIVITIES), help="The new sensitivity.")
@click.option("--license", "license_", metavar="SPDX", help="The new SPDX license id.")
@click.option("--attribution", help="The new attribution.")
@click.option("--reason", required=True, help="Why the labels change (kept in the trail).")
@click.option("--by", "by", metavar="WHO", help="Who decides it (default: the user).")
@json_option
@click.pass_context
def relabel(ctx: click.Context, paths: tuple[str, ...], sensitivity: str | None,
            license_: str | None, attribution: str | None, reason: str, by: str | None,
            as_json: bool) -> int:
    """Change the labels of recorded raw PATHS: the only way to, all or nothing.

    Each change is kept in labels.trail.jsonl beside the manifest (who, when, why,
    old → new); the gate and trace show the new labels, and a certificate names the
    relabels its closure relied on. A file whose manifest was edited by hand is refused.

    \b
    Example:
      kfm-prov raw relabel data/raw/sites/sites.csv --sensitivity restricted \\
          --reason "coordinates generalised upstream, agreed with SHPO" --by "J. Steward"
    """
    results = get_lake(ctx).raw_relabel(paths, reason=reason, by=by, license=license_,
                                        attribution=attribution, sensitivity=sensitivity)
    if as_json:
        emit_json([r.to_dict() for r in results])
        return 0
    for r in results:
        changed = [k for k in r.new if r.new[k] != r.old[k]]
        what = ", ".join(f"{k} {r.old[k]} → {r.new[k]}" for k in changed)
        click.echo(f"{r.status:10} {r.path}" + (f"  ({what})" if what else ""))
    if all(r.status == "unchanged" for r in results):
        info("nothing changed: the files already have these labels")
    return 0


@command.command("adopt")
@click.argument("paths", nargs=-1, required=True, type=click.Path(dir_okay=False))
@click.option("--reason", required=True, help="Why these labels are right (kept in the trail).")
@click.option("--by", "by", metavar="WHO", help="Who vouches for them (default: the user).")
@json_option
@click.pass_context
def adopt(ctx: click.Context, paths: tuple[str, ...], reason: str, by: str | None,
          as_json: bool) -> int:
    """Begin the label trail of manifests recorded before trails existed.

    The gate refuses raw files whose manifest has no labels.trail.jsonl
    (raw-labels-untracked). Check the labels in manifest.yml first: adopt records them
    as they are, who vouched and why, with an entry for every file of each manifest that
    applies to PATHS. A manifest that already has a trail is refused (exit 2), and so is
    a path no manifest records; nothing is written then. The manifests are not changed.

    \b
    Example:
      kfm-prov raw adopt data/raw/sites/sites.csv \\
          --reason "labels checked against the 2019 data-sharing agreement" --by "J. Steward"
    """
    results = get_lake(ctx).raw_adopt(paths, reason=reason, by=by)
    if as_json:
        emit_json([r.to_dict() for r in results])
        return 0
    for r in results:
        click.echo(f"{'adopted':10} {r.path}  ({r.labels['sensitivity']}, {r.labels['license']})"
                   + ("" if r.named else "  [same manifest]"))
    return 0
