"""``kfm-prov check`` and ``kfm-prov promote``: the gate, and publishing what passes it."""

from __future__ import annotations

import getpass

import click

from kfm_prov.cli.output import emit_json, get_lake, json_option
from kfm_prov.errors import CheckFailed


def print_report(report: object, as_json: bool) -> None:
    from kfm_prov.gate import GateReport

    assert isinstance(report, GateReport)
    if as_json:
        data = report.to_dict()
        data["findings"] = [f.to_dict() for f in report.findings]
        emit_json(data)
        return
    click.echo(f"run {report.run.run_id} ({report.run.family}): {len(report.runs)} run(s),"
               f" {len(report.entities)} file(s) in the closure")
    for check in report.checks:
        mark = "PASS" if check.status == "pass" else "FAIL"
        click.echo(f"  {mark}  {check.id:14} {check.title}")
        for finding in check.findings:
            click.echo(f"        [{finding.code}] {finding.message}")
            if finding.nodes:
                click.echo(f"          path: {' -> '.join(map(report.node_label, finding.nodes))}")
            if finding.hint:
                click.echo(f"          fix: {finding.hint}")
    for product in report.products:
        click.echo(f"  product {product.path} ({report.product_sensitivity[product.path]})")


@click.command("check")
@click.argument("run_id")
@click.option("--output", "outputs", multiple=True, metavar="PATH",
              help="Check these outputs instead of the run's products.")
@click.option("--drop", "drop", multiple=True, metavar="NAME",
              help="Leave the latest version's product NAME out of the new version"
                   " (repeatable); every other product of it is carried forward.")
@json_option
@click.pass_context
def check_command(ctx: click.Context, run_id: str, outputs: tuple[str, ...],
                  drop: tuple[str, ...], as_json: bool) -> int:
    """Run every check of the promotion gate on RUN_ID's products; write nothing.

    Exit 0 when every check passes, 1 otherwise, with each failure's reason code and the
    lineage path that fails.

    \b
    Example:
      kfm-prov check 01JD7Q8Z --json
    """
    report = get_lake(ctx).check(run_id, outputs, drop=drop)
    print_report(report, as_json)
    return 0 if report.ok else 1


@click.command("promote")
@click.argument("run_id")
@click.option("--version", help="Version to create (default: the next vN of the family).")
@click.option("--output", "outputs", multiple=True, metavar="PATH",
              help="Promote these outputs instead of the run's products.")
@click.option("--by", "requested_by", help="Who asks for the promotion (default: the user).")
@click.option("--drop", "drop", multiple=True, metavar="NAME",
              help="Leave the latest version's product NAME out of the new version"
                   " (repeatable); every other product of it is carried forward.")
@json_option
@click.pass_context
def promote_command(ctx: click.Context, run_id: str, version: str | None,
                    outputs: tuple[str, ...], requested_by: str | None, drop: tuple[str, ...],
                    as_json: bool) -> int:
    """Run the gate; if it passes, publish RUN_ID's products as a new immutable version.

    Writes data/processed/<family>/<version>/ with checksums, the STAC item and
    collection, the PROV bundle, the certificate and the DCAT entry, all in one atomic
    step. A version is a snapshot of the family: the latest version's other products
    are carried forward unchanged (re-verified) unless named with --drop. A refusal
    (exit 1) writes a refusal receipt in the run directory and nothing else.

    \b
    Example:
      kfm-prov promote 01JD7Q8Z --version v3
      kfm-prov promote 01JD7Q8Z --drop roads.geojson
    """
    lake = get_lake(ctx)
    try:
        result = lake.promote(run_id, version=version, outputs=outputs,
                              requested_by=requested_by or _user(), drop=drop)
    except CheckFailed as exc:
        if as_json:
            emit_json({"ok": False, "findings": [f.to_dict() for f in exc.findings]})
        raise
    if as_json:
        emit_json({"ok": True, **result.to_dict()})
    else:
        if result.already_published:
            click.echo(f"already published as {result.family} {result.version}: its products"
                       " are byte-identical; nothing was written")
            return 0
        click.echo(f"promoted {result.family} {result.version} from run {result.run_id}")
        for path in result.files:
            kind = "carried" if path in result.carried else "file"
            click.echo(f"  {kind:12} {path}")
        for name in result.dropped:
            click.echo(f"  dropped      {name}")
        click.echo(f"  STAC item    {result.stac_item}")
        click.echo(f"  PROV bundle  {result.prov_bundle}")
        click.echo(f"  certificate  {result.certificate}")
        click.echo(f"  DCAT         {result.dcat}")
        if result.attestation:
            click.echo(f"  attestation  {result.attestation}")
    return 0


def _user() -> str | None:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return None
