"""`growth-stack router`: run the streaming routes; replay a date range; list or replay dead letters."""

from __future__ import annotations

import datetime as dt
import logging
import os
import signal
import sys

import click


def _load(routes_file: str | None):
    from growth_stack_dagster.router.routes import RoutesError, load_routes

    try:
        return load_routes(routes_file or os.environ.get("GROWTH_STACK_ROUTES") or None)
    except RoutesError as exc:
        raise click.ClickException(str(exc)) from None


def _route(routes_file: str | None, name: str):
    from growth_stack_dagster.router.runner import find_route

    try:
        return find_route(_load(routes_file), name)
    except KeyError as exc:
        raise click.ClickException(exc.args[0]) from None


def _date(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value).isoformat()
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date; write it as YYYY-MM-DD.", param_hint=option) from None


_ROUTES_OPTION = click.option("--routes", "routes_file", default=None, metavar="PATH",
                              help="Routes file. Default: $GROWTH_STACK_ROUTES or the repository's "
                                   "growth_stack_dagster/router/routes.yaml.")


@click.group("router", invoke_without_command=True)
@_ROUTES_OPTION
@click.pass_context
def router_command(ctx: click.Context, routes_file: str | None) -> None:
    """Deliver the streaming routes: tail the event files under $GROWTH_STACK_HOME/events and send
    each route's messages to its destination within seconds (state in $GROWTH_STACK_HOME/router).

    \b
    Destinations: AMPLITUDE_URL / AMPLITUDE_API_KEY, HUBSPOT_URL / HUBSPOT_ACCESS_TOKEN,
    GROWTH_STACK_SALES_WEBHOOK_URL / GROWTH_STACK_SALES_WEBHOOK_SECRET (defaults: the sandbox).
    """
    if ctx.invoked_subcommand is not None:
        return
    from growth_stack_dagster import config
    from growth_stack_dagster.router.runner import Router

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    routes = _load(routes_file)
    try:
        router = Router(routes)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None

    def stop(signum: int, frame: object) -> None:
        router.stop.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    logging.getLogger("growth_stack.router").info(
        "router: %d route(s) (%s) reading %s", len(routes), ", ".join(r.name for r in routes), config.events_dir())
    sys.stdout.flush()
    router.run()


@router_command.command("replay")
@click.argument("route")
@click.option("--from", "start", required=True, help="First received date to re-send (YYYY-MM-DD, UTC).")
@click.option("--to", "end", default=None, help="Last received date (inclusive). Default: every later day.")
@_ROUTES_OPTION
def replay_command(route: str, start: str, end: str | None, routes_file: str | None) -> None:
    """Re-send ROUTE's messages received since --from (with the same dedup keys, so nothing the
    destination already has is counted twice). The running router's cursor is not moved."""
    from growth_stack_dagster.router.runner import replay

    counts = replay(_route(routes_file, route), _date(start, "--from"), _date(end, "--to"))
    click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))


@router_command.command("dead-letters")
@click.argument("route")
@click.option("--replay", "do_replay", is_flag=True, help="Send them again; those that fail again stay.")
@_ROUTES_OPTION
def dead_letters_command(route: str, do_replay: bool, routes_file: str | None) -> None:
    """List ROUTE's dead letters (messages that kept failing, with the reason), or --replay them."""
    from growth_stack_dagster.router.runner import redrive
    from growth_stack_dagster.router.state import DeadLetters

    chosen = _route(routes_file, route)
    if do_replay:
        counts = redrive(chosen)
        click.echo(" ".join(f"{k}={v}" for k, v in counts.items()))
        return
    entries = DeadLetters(chosen.name).read()
    for e in entries:
        click.echo(f"{e.get('failed_at')}  attempts={e.get('attempts')}  {e.get('position')}  {e.get('reason')}")
    click.echo(f"{len(entries)} dead letter(s) for {chosen.name}; `growth-stack router dead-letters "
               f"{chosen.name} --replay` sends them again.")
