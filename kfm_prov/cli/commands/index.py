"""``kfm-prov index``: rebuild, status and migrate of the lineage index."""

from __future__ import annotations

import click

from kfm_prov.cli.output import emit_json, get_lake, info, json_option


@click.group("index")
def command() -> None:
    """The lineage index (disposable: it can always be rebuilt from receipts)."""


@command.command("rebuild")
@click.option("--full", is_flag=True,
              help="Re-check every run's receipts and secrets, even those already checked"
                   " with the same evidence under the same rules.")
@json_option
@click.pass_context
def rebuild(ctx: click.Context, full: bool, as_json: bool) -> int:
    """Rebuild the index from run receipts, raw manifests and promotion records.

    Runs that cannot be read are skipped and listed (exit 0: the index is still usable).
    A run whose evidence is unchanged since it was last checked under the same rules is
    not schema-checked and scanned for secrets again; `--full` checks them all.

    \b
    Example:
      kfm-prov index rebuild --full
    """
    result = get_lake(ctx).rebuild_index(full=full)
    if as_json:
        emit_json({"runs": result.runs, "raw_files": result.raw_files,
                   "skipped": [f.to_dict() for f in result.skipped]})
        return 0
    for finding in result.skipped:
        info(f"skipped: {finding.one_line()}")
    click.echo(f"indexed {result.runs} runs and {result.raw_files} raw files")
    return 0


@command.command("status")
@json_option
@click.pass_context
def status(ctx: click.Context, as_json: bool) -> int:
    """Which index the lake uses, its size, and whether it is in step with the receipts.

    Exit 1 when runs, raw files or promotions on disk and in the index differ
    (`kfm-prov index rebuild` brings them in step).

    \b
    Example:
      kfm-prov index status --json
    """
    from kfm_prov.store.admin import index_status

    result = index_status(get_lake(ctx).config)
    if as_json:
        emit_json(result.to_dict())
    else:
        stats = result.stats
        where = stats.location + (f" (schema {stats.lake})" if stats.lake else "")
        click.echo(f"backend        {stats.backend}\nlocation       {where}\n"
                   f"schema         {stats.schema_version}\nsize           {stats.bytes} bytes\n"
                   f"rows           " + ", ".join(f"{k} {v}" for k, v in stats.rows.items()))
        click.echo(f"runs on disk   {result.runs_on_disk}")
        for run_dir in result.not_indexed:
            info(f"not indexed: {run_dir}")
        for run_id in result.gone:
            info(f"indexed but gone: {run_id}")
        if result.raw_differs:
            info(f"raw files on disk and in the index differ: {result.raw_differs}")
        if result.promotions_differ:
            info(f"promotions on disk and in the index differ: {result.promotions_differ}")
        click.echo("in step with the receipts" if result.in_step
                   else "NOT in step with the receipts; run `kfm-prov index rebuild`")
    return 0 if result.in_step else 1


@command.command("migrate")
@click.option("--to", "to", required=True, metavar="URL",
              help="postgresql://[user@]host[:port]/database, or sqlite for the file under"
                   " the cache directory.")
@json_option
@click.pass_context
def migrate(ctx: click.Context, to: str, as_json: bool) -> int:
    """Copy the index in use into another backend (replacing what it held for this lake).

    The configuration is not changed: set `[index] url` in kfm-prov.toml (or
    KFM_PROV_INDEX_URL) afterwards. Passwords belong in PGPASSWORD, ~/.pgpass or
    `[index] password_file`, not in the URL.

    \b
    Example:
      kfm-prov index migrate --to postgresql://kfm@db.example.org/lineage
    """
    from kfm_prov.store.admin import migrate_index

    result = migrate_index(get_lake(ctx).config, to)
    if as_json:
        emit_json(result.to_dict())
        return 0
    target = result.target
    where = target.location + (f" (schema {target.lake})" if target.lake else "")
    click.echo(f"copied {target.rows['runs']} runs, {target.rows['raw']} raw files and"
               f" {target.rows['promotions']} promotion rows to {where}")
    info("set [index] url in kfm-prov.toml (or KFM_PROV_INDEX_URL) to use it")
    return 0
