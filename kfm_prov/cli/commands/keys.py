"""``kfm-prov keys generate``: an Ed25519 key pair for signing runs and promotions."""

from __future__ import annotations

from pathlib import Path

import click

from kfm_prov.cli.output import emit_json, info, json_option


@click.group("keys")
def command() -> None:
    """Signing keys (Ed25519) for signed runs and promotions."""


@command.command("generate")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path),
              default=Path("~/.config/kfm-prov").expanduser(), show_default=True,
              help="Directory for kfm-prov-signing.key (mode 0600) and .pub.")
@json_option
@click.pass_context
def generate_command(ctx: click.Context, out_dir: Path, as_json: bool) -> int:
    """Write a new key pair and print its key id (sha256 of the public key).

    The private key is refused inside the lake root. Point KFM_PROV_SIGNING_KEY (or
    [signing] key) at it, and list the .pub under [trust] keys of the lakes that trust it.

    \b
    Example:
      kfm-prov keys generate --out ~/.config/kfm-prov
    """
    from kfm_prov.config import find_root
    from kfm_prov.core.keys import generate
    from kfm_prov.errors import NotFoundError

    try:
        root = find_root(ctx.find_root().params.get("root"))
    except NotFoundError:
        root = None  # no lake around: nothing to keep the key out of
    made = generate(out_dir, lake_root=root)
    if as_json:
        emit_json(made.to_dict())
    else:
        click.echo(f"private key  {made.private_path}  (mode 0600; keep it secret)")
        click.echo(f"public key   {made.public_path}")
        click.echo(f"key id       {made.keyid}")
        info(f"sign with: export KFM_PROV_SIGNING_KEY={made.private_path}")
    return 0
