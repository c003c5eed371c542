"""`growth-stack sandbox`: serve the SaaS API emulations."""

from __future__ import annotations

import os

import click

from growth_stack_dagster import config


@click.command("sandbox")
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to bind (loopback by default).")
@click.option("--port", default=8090, show_default=True, type=int)
@click.option("--webhook-url", default=None,
              help="Where the sandbox posts signed webhooks, as <url>/<source>. "
                   "Default: $GROWTH_STACK_SANDBOX_WEBHOOK_URL or <collector>/v1/webhook; '' disables.")
@click.option("--rate-limit-scale", default=None, type=float,
              help="Multiply every published API rate limit (0 disables them). "
                   "Default: $GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE or 1.")
@click.option("--allow-development-keys", is_flag=True,
              help="Listen on a non-loopback address even though the built-in sandbox token is in use "
                   "(throwaway machines only).")
def sandbox_command(host: str, port: int, webhook_url: str | None, rate_limit_scale: float | None,
                    allow_development_keys: bool) -> None:
    """Serve faithful, stateful emulations of HubSpot, Stripe, Customer.io, Amplitude,
    Facebook Marketing and Zendesk under one port, state kept under $GROWTH_STACK_HOME/sandbox.

    Refuses a non-loopback --host while GROWTH_STACK_SANDBOX_TOKEN is the built-in development token."""
    from growth_stack_dagster.bind import development_settings_in_use, refuse_public_bind

    if not allow_development_keys:  # checked before any state is opened or any socket bound
        in_use = development_settings_in_use(
            {"GROWTH_STACK_SANDBOX_TOKEN": (config.sandbox_token(), config.DEFAULT_SANDBOX_TOKEN)})
        refuse_public_bind(host, in_use, "--allow-development-keys")
    import uvicorn

    from growth_stack_dagster.sandbox.app import build_app, make_context

    if webhook_url is None:
        webhook_url = os.environ.get("GROWTH_STACK_SANDBOX_WEBHOOK_URL", config.collector_url() + "/v1/webhook")
    if rate_limit_scale is None:
        rate_limit_scale = float(os.environ.get("GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE", "1"))
    ctx = make_context(config.sandbox_state_dir(), config.sandbox_token(), webhook_url or None, rate_limit_scale)
    uvicorn.run(build_app(ctx), host=host, port=port, log_level="warning", access_log=False)
