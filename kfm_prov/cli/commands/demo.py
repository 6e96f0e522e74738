"""``kfm-prov demo [DIR]``: an example lake, built and run end to end."""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, info, json_option


@click.command("demo")
@click.argument("directory", default="demo-lake", type=click.Path(file_okay=False))
@json_option
def command(directory: str, as_json: bool) -> int:
    """Build an example lake in DIRECTORY (default: demo-lake) and run the whole flow.

    Raw captures of four example families; pipeline runs captured with the Python API,
    with `kfm-prov run` around a shell command, and by `kfm-prov record`; the gate, four
    promotions and one refusal; a second version; and a trace of the published product.
    It prints where to look and what to try next. A previous demo lake in DIRECTORY is
    replaced; any other non-empty DIRECTORY is refused. Needs git.

    \b
    Example:
      kfm-prov demo demo-lake && cd demo-lake && kfm-prov runs
    """
    from kfm_prov.demo import run_demo

    result = run_demo(directory, echo=info if as_json else click.echo)
    if as_json:
        emit_json(result.to_dict())
    return 0
