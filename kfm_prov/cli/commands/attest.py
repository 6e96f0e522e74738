"""``kfm-prov attest`` and ``kfm-prov verify-artifact``: signing a version, checking a file."""

from __future__ import annotations

from pathlib import Path

import click

from kfm_prov.cli.output import emit_json, get_lake, json_option


@click.command("attest")
@click.argument("family")
@click.argument("version")
@json_option
@click.pass_context
def attest_command(ctx: click.Context, family: str, version: str, as_json: bool) -> int:
    """Re-verify FAMILY VERSION, then sign it (for lakes that adopt signing later).

    Writes data/prov/<family>/<version>.intoto.jsonl with the SLSA provenance and
    verification summary, signed by the configured key (KFM_PROV_SIGNING_KEY or
    [signing] key). A version that does not verify is refused (exit 1), unsigned.

    \b
    Example:
      KFM_PROV_SIGNING_KEY=~/.config/kfm-prov/kfm-prov-signing.key kfm-prov attest glo v1
    """
    rel = get_lake(ctx).attest(family, version)
    if as_json:
        emit_json({"ok": True, "family": family, "version": version, "attestation": rel})
    else:
        click.echo(f"signed {family} {version}: {rel}")
    return 0


@click.command("verify-artifact")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--attestation", required=True, type=click.Path(dir_okay=False, path_type=Path),
              help="The version's .intoto.jsonl.")
@click.option("--key", "keys", required=True, multiple=True,
              type=click.Path(dir_okay=False, path_type=Path),
              help="The signer's public key (PEM); repeat for several.")
@json_option
def verify_artifact_command(file: Path, attestation: Path, keys: tuple[Path, ...],
                            as_json: bool) -> int:
    """Check one downloaded FILE against its attestation, without a lake.

    Passes when the file's sha256 is a subject of a SLSA provenance and a PASSED
    verification summary, both validly signed by one of the keys; shows the raw sources
    and their licenses. Exit 1 when it does not verify, 2 for unreadable input.

    \b
    Example:
      kfm-prov verify-artifact parcels.geojson --attestation v1.intoto.jsonl --key ci.pub
    """
    from kfm_prov.core.keys import load_public_key
    from kfm_prov.publish.attest import verify_artifact

    report = verify_artifact(file, attestation, [load_public_key(k) for k in keys])
    if as_json:
        emit_json(report.to_dict())
        return 0
    click.echo(f"verified {report.file}: {report.digest}")
    click.echo(f"  is {report.subject} of {report.family} {report.version}")
    click.echo(f"  signed by key {report.keyid}; gate PASSED at {report.time_verified}"
               f" ({', '.join(report.verified_levels)})")
    for source in report.sources:
        if source.get("role") == "carried":
            click.echo(f"  carried {source['name']} (first published in"
                       f" {source.get('version')} from run {source.get('run')})")
            continue
        labels = ", ".join(f"{k} {source[k]}" for k in ("license", "sensitivity", "attribution")
                           if source.get(k))
        click.echo(f"  source {source['name']} ({labels})")
    return 0
