"""``kfm-prov serve``: receive OpenLineage events over HTTP; a read API for tools."""

from __future__ import annotations

import click

from kfm_prov.cli.output import get_lake


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True,
              help="Address to bind; anything but loopback exposes the intake to the network.")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535),
              help="TCP port.")
@click.option("--token-file", type=click.Path(dir_okay=False, exists=True),
              help="API tokens, one a line (besides $KFM_PROV_SERVE_TOKENS, comma-separated).")
@click.option("--max-body-mb", default=4.0, show_default=True, type=click.FloatRange(0.01, 512),
              help="Largest request body accepted (after gzip); larger is 413.")
@click.pass_context
def command(ctx: click.Context, host: str, port: int, token_file: str | None,
            max_body_mb: float) -> int:
    """Serve the OpenLineage intake (POST /api/v1/lineage, /batch) and the read API.

    Producers point here with their usual settings: OPENLINEAGE_URL=http://HOST:PORT and
    an API key that is one of the tokens. Each run's START..COMPLETE/FAIL/ABORT becomes a
    recorded run, as `kfm-prov record` would record it. Read endpoints: GET
    /api/v1/lineage?artifact=A&direction=up|down, /api/v1/runs, /api/v1/runs/{id},
    /api/v1/check/{run_id}; the OpenAPI document is at /openapi.json.

    \b
    Example:
      KFM_PROV_SERVE_TOKENS=$(openssl rand -hex 24) kfm-prov serve --port 5000
    """
    from kfm_prov.serve import load_tokens, serve

    lake = get_lake(ctx)
    tokens = load_tokens(token_file)
    serve(lake.config, tokens, host=host, port=port, max_body=int(max_body_mb * 1024 * 1024))
    return 0
