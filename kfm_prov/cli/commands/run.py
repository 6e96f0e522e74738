"""``kfm-prov run -- CMD``: any command as a captured run."""

from __future__ import annotations

from pathlib import Path

import click

from kfm_prov.cli.output import emit_json, get_lake, info, json_option
from kfm_prov.errors import UsageError


def _split_role(value: str, roles: tuple[str, ...], default: str, option: str) -> tuple[str, str]:
    name, sep, role = value.rpartition(":")
    if sep and role in roles:
        return name, role
    if sep and role and "/" not in role:
        raise UsageError(f"unknown role {role!r}; one of {', '.join(roles)}", field=option)
    return value, default


def _split_output(value: str) -> tuple[str, str, str | None]:
    """``NAME[:ROLE[:SENSITIVITY]]``."""
    from kfm_prov.capture import OUTPUT_ROLES
    from kfm_prov.config import SENSITIVITIES

    name, sep, last = value.rpartition(":")
    if sep and last in SENSITIVITIES:
        return (*_split_role(name, OUTPUT_ROLES, "intermediate", "--output"), last)
    return (*_split_role(value, OUTPUT_ROLES, "intermediate", "--output"), None)


def parse_params(values: tuple[str, ...]) -> dict[str, object]:
    """``K=V`` pairs; V is read as JSON when it parses (numbers, lists), else as text."""
    import json

    params: dict[str, object] = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise UsageError(f"expected K=V, got {item!r}", field="--param")
        try:
            params[key] = json.loads(value)
        except ValueError:
            params[key] = value
    return params


@click.command("run", context_settings={"ignore_unknown_options": True})
@click.option("--family", "-f", required=True, help="Dataset family, e.g. glo_land_patents.")
@click.option("--pipeline", "-p", required=True, help="Pipeline id, e.g. pipelines/glo.")
@click.option("--input", "-i", "inputs", multiple=True, metavar="PATH[:ROLE]",
              help="Input path relative to the root; role primary|auxiliary|config.")
@click.option("--output", "-o", "outputs", multiple=True, metavar="NAME[:ROLE[:LABEL]]",
              help="Output name under the run's artifacts/; role intermediate|product; label"
                   " public|restricted|sensitive-location.")
@click.option("--param", "params", multiple=True, metavar="K=V", help="A run parameter.")
@click.option("--spec", type=click.Path(dir_okay=False), help="Pipeline spec (JSON or YAML).")
@click.option("--git-dir", type=click.Path(file_okay=False),
              help="Where the pipeline's code lives (default: here).")
@click.option("--commit", help="The pipeline's git commit, when it cannot be detected.")
@click.option("--cwd", type=click.Path(file_okay=False),
              help="Run COMMAND in this directory (relative to the lake root; default: the"
                   " lake root).")
@click.option("--runner", "runner_type", type=click.Choice(["ci", "local", "cluster"]),
              help="Runner kind (default: detected from CI/cluster variables).")
@json_option
@click.argument("command", nargs=-1, required=True, type=click.UNPROCESSED)
@click.pass_context
def command(ctx: click.Context, family: str, pipeline: str, inputs: tuple[str, ...],
            outputs: tuple[str, ...], params: tuple[str, ...], spec: str | None,
            git_dir: str | None, commit: str | None, cwd: str | None, runner_type: str | None,
            as_json: bool, command: tuple[str, ...]) -> int:
    """Run COMMAND as a captured run and exit with its exit code.

    COMMAND runs in the lake root (or --cwd), the directory --input and --spec paths are
    read from, so a relative path names the same file to both. Its stdout and stderr are
    shown and kept in the run's logs/ (secrets scrubbed); the run id is printed on
    stderr. The command's script (its first path-like argument that is a script file)
    must be committed, unchanged, in the repository of --git-dir at --commit (default:
    its HEAD): otherwise a warning now, and the gate refuses later.

    \b
    Besides your environment, COMMAND sees:
      KFM_PROV_ROOT      the lake root (absolute)
      KFM_RUN_ID         the run's id (a ULID)
      KFM_RUN_DIR        the run's directory (absolute)
      KFM_ARTIFACTS_DIR  where to write the declared --output files (absolute)

    \b
    Example:
      kfm-prov run -f nhgis_tracts -p pipelines/nhgis \\
          -i data/raw/nhgis_tracts/tracts.csv -o joined.csv:product --param year=2020 \\
          -- sh -c 'join.sh "$KFM_ARTIFACTS_DIR/joined.csv"'
    """
    lake = get_lake(ctx)
    from kfm_prov.capture import INPUT_ROLES

    result, code = lake.run_command(
        family, pipeline, list(command),
        inputs=[_split_role(i, INPUT_ROLES, "primary", "--input") for i in inputs],
        outputs=[_split_output(o) for o in outputs],
        params=parse_params(params), spec=spec, commit=commit,
        git_dir=Path(git_dir) if git_dir else None, runner_type=runner_type,
        echo=not as_json, cwd=cwd)
    why = f": {result.reason}" if result.reason else ""
    info(f"kfm-prov: run {result.run_id} {result.status}{why} ({result.run_dir})")
    if as_json:
        emit_json({**result.__dict__, "exit_code": code})
    return code
