"""`growth-stack console`: serve the console (home page, executive scorecard) with uvicorn."""

from __future__ import annotations

import os

import click

from growth_stack_dagster.bind import is_loopback

TOKEN_ENV = "GROWTH_STACK_CONSOLE_TOKEN"


@click.command("console")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=3001, show_default=True, type=int, help="Port to listen on.")
@click.option("--dagster-url", default=lambda: os.environ.get("GROWTH_STACK_DAGSTER_URL", "http://127.0.0.1:3000"),
              show_default="$GROWTH_STACK_DAGSTER_URL or http://127.0.0.1:3000", help="The Dagster UI the pages link to.")
def console_command(host: str, port: int, dagster_url: str) -> None:
    """Serve the console: the home page and the executive scorecard (/scorecard).

    Beyond loopback it requires a token, from $GROWTH_STACK_CONSOLE_TOKEN."""
    token = os.environ.get(TOKEN_ENV, "").strip() or None
    if not is_loopback(host) and not token:
        raise click.UsageError(f"Refusing to listen on {host} without a token: anyone who can reach it could read "
                               f"the company's figures. Set {TOKEN_ENV} to a long random secret (e.g. "
                               "`openssl rand -hex 32`), or bind to 127.0.0.1.")
    import uvicorn

    from growth_stack_dagster.console.app import create_app

    click.echo(f"Console on http://{host}:{port}" + (" (token required)" if token else ""))
    uvicorn.run(create_app(token=token, dagster_url=dagster_url), host=host, port=port, log_level="warning")
