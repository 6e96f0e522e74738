"""``kfm-prov runs`` and ``kfm-prov show``: what ran, and one run in detail."""

from __future__ import annotations

import json

import click

from kfm_prov.cli.output import (
    emit_json,
    get_lake,
    info,
    json_option,
    plain_table,
    stdout_is_plain,
)
from kfm_prov.store.receipts import validation_label

HEADERS = ("run id", "family", "pipeline", "status", "validation", "started", "commit", "code")


@click.command("runs")
@click.option("--family", "-f", help="Only this family.")
@click.option("--status", type=click.Choice(["success", "failed", "interrupted", "running"]),
              help="Only runs that ended so.")
@click.option("--pipeline", "-p", metavar="ID", help="Only runs of this pipeline id.")
@click.option("--last", is_flag=True, help="Only the newest matching run (by start time).")
@click.option("--format", "fmt", type=click.Choice(["table", "json", "id"]), default=None,
              help="table (default), json, or id: one run id per line, for scripts.")
@json_option
@click.pass_context
def runs_command(ctx: click.Context, family: str | None, status: str | None,
                 pipeline: str | None, last: bool, fmt: str | None, as_json: bool) -> int:
    """List recorded runs, oldest first.

    Exit 1 when nothing matches, so a script's `$(kfm-prov runs --last --format id ...)`
    never goes on with an empty run id.

    \b
    Example:
      kfm-prov runs --family glo_land_patents --status success --last --format id
    """
    rows = get_lake(ctx).runs(family, status=status, pipeline=pipeline, last=last)
    fmt = fmt or ("json" if as_json else "table")
    if fmt == "json":
        emit_json([r.to_dict() for r in rows])
    elif fmt == "id":
        for r in rows:
            click.echo(r.run_id)
    else:
        problems = get_lake(ctx).code_problems(rows)
        cells = [(r.run_id, r.family, r.pipeline_id, r.status,
                  validation_label(r.status, r.overall_status), r.started_at[:19],
                  _commit(r.git_commit), " ".join(problems[r.run_id]) or "ok") for r in rows]
        text = plain_table(HEADERS, cells) if stdout_is_plain() else None
        if text is not None:  # a pipe or a file: the same text, without importing rich
            click.echo(text, nl=False)
        else:
            from rich.console import Console
            from rich.markup import escape
            from rich.table import Table

            table = Table(*HEADERS, box=None)
            for row in cells:  # ids are text, never markup: "[/]" or ":100:" print as typed
                table.add_row(*map(escape, row))
            Console(width=220, emoji=False).print(table)
        if any(problems.values()):
            info("kfm-prov: warning: the gate refuses products of runs whose code is not ok"
                 " (see the code column, and kfm-prov show RUN_ID)")
    return 0 if rows or not (status or pipeline or last) else 1


def _commit(commit: str) -> str:
    """Twelve hex digits, keeping a ``-dirty`` suffix visible."""
    return commit[:12] + ("-dirty" if commit.endswith("-dirty") else "")


@click.command("show")
@click.argument("run_id")
@json_option
@click.pass_context
def show_command(ctx: click.Context, run_id: str, as_json: bool) -> int:
    """Show one run: status, times, pipeline, commit, files with digests, gates, upstream.

    RUN_ID may be a unique prefix of at least 6 characters.

    \b
    Example:
      kfm-prov show 01JD7Q8Z
    """
    data = get_lake(ctx).show(run_id)
    if as_json:
        emit_json(data)
        return 0
    echo = click.echo
    echo(f"run       {data['run_id']}  ({data['run_dir']})")
    echo(f"family    {data['family']}")
    echo(f"pipeline  {data['pipeline_id']} @ {data['git_commit']}")
    code = data.get("code") or {}
    where = code.get("repository") or code.get("worktree") or "no repository"
    echo(f"code      {code.get('entry') or '-'} in {where}")
    problems = code.get("problems") if data.get("code") else ["unknown-commit"]
    if problems:
        echo(f"warning   code: {', '.join(problems)}; the gate will refuse its products")
    exit_code = "" if data["exit_code"] is None else f"  exit {data['exit_code']}"
    echo(f"status    {data['status']}  validation"
         f" {validation_label(data['status'], data['overall_status'])}{exit_code}")
    echo(f"time      {data['started_at']} → {data['ended_at']}")
    echo(f"spec      {data['spec_hash']}")
    echo("params    " + json.dumps(data["params"], sort_keys=True, ensure_ascii=False))
    for title, key in (("inputs", "inputs"), ("outputs", "outputs")):
        echo(f"{title}:")
        for entry in data[key]:
            echo(f"  {entry['digest'][:19]}…  {entry['role']:12} {entry['path']}")
    echo("gates:")
    for gate in data["gates"]:
        echo(f"  {gate['status']:6} {gate['name']}")
    echo("upstream runs: " + (", ".join(data["upstream_runs"]) or "none"))
    return 0
