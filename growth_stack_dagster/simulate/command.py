"""`growth-stack simulate`: generate the example company into the sandbox, the event files and the collector."""

from __future__ import annotations

import datetime as dt
import sys

import click

from growth_stack_dagster import config


def _parse_day(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.date | dt.datetime | None:
    """A date (YYYY-MM-DD), or a moment (YYYY-MM-DDTHH:MM:SSZ, UTC without an offset) as an aware datetime."""
    if value is None:
        return None
    try:
        if len(value.strip()) == 10:
            return dt.date.fromisoformat(value.strip())
        moment = dt.datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        return moment if moment.tzinfo else moment.replace(tzinfo=dt.timezone.utc)
    except ValueError:
        raise click.BadParameter(f"{value!r} is not a date or a moment; write it as YYYY-MM-DD or "
                                 "YYYY-MM-DDTHH:MM:SSZ.") from None


@click.command("simulate")
@click.option("--customers", default=1000, show_default=True, type=click.IntRange(min=0), help="People to generate.")
@click.option("--days", default=120, show_default=True, type=click.IntRange(min=1), help="Days of history before --as-of.")
@click.option("--seed", default=42, show_default=True, type=int, help="Same seed, same company.")
@click.option("--as-of", "as_of", default=None, callback=_parse_day,
              help="The simulated 'today' (YYYY-MM-DD), or the moment the ground truth holds at "
                   "(YYYY-MM-DDTHH:MM:SSZ; a date alone means 00:00 UTC); history covers the --days before "
                   "it. Default: today (UTC).")
@click.option("--sandbox-url", default=None, help="The SaaS sandbox to seed. Default: $GROWTH_STACK_SANDBOX_URL.")
@click.option("--no-sandbox", is_flag=True, help="Do not seed the sandbox; only write event files and the ground truth.")
@click.option("--collector-url", default=None,
              help="Where today's traffic goes. Default: $GROWTH_STACK_COLLECTOR_URL; if it does not answer, "
                   "today's traffic is written to today's event files.")
@click.option("--no-collector", is_flag=True, help="Write today's traffic to the event files instead of the collector.")
@click.option("--progress/--no-progress", default=None, help="Show a progress bar (default: when stderr is a terminal).")
@click.option("--live", is_flag=True,
              help="Generate nothing: keep sending the generated company's shoppers' page and product views to "
                   "the collector, stamped now, until stopped (Ctrl-C). The demo runs this.")
@click.option("--live-events-per-minute", default=60, show_default=True, type=click.IntRange(min=1),
              help="With --live: about how many events a minute.")
def simulate_command(customers: int, days: int, seed: int, as_of: dt.date | dt.datetime | None, sandbox_url: str | None,
                     no_sandbox: bool, collector_url: str | None, no_collector: bool, progress: bool | None,
                     live: bool = False, live_events_per_minute: int = 60) -> None:
    """Generate the example eCommerce company deterministically from --seed: web and app events,
    CRM, payments, email, ads and support data, SKU cost files, and the ground truth
    (`$GROWTH_STACK_HOME/simulation/ground_truth.jsonl`, `summary.json`)."""
    if live:
        _run_live(collector_url or config.collector_url(), live_events_per_minute, seed)
        return
    from growth_stack_dagster.simulate.generator import SimParams
    from growth_stack_dagster.simulate.runner import run_simulation
    from growth_stack_dagster.simulate.sinks import SinkError

    today = dt.datetime.now(dt.timezone.utc).date()
    moment = as_of.astimezone(dt.timezone.utc) if isinstance(as_of, dt.datetime) else None
    day = moment.date() if moment else (as_of or today)
    params = SimParams(customers=customers, days=days, seed=seed, as_of=day, as_of_at=moment)
    if days < 35:
        click.echo(f"Note: with --days {days} (< 35) nobody can be high-value: the activity criterion "
                   "looks at the 4 complete weeks before --as-of.", err=True)
    try:
        summary = run_simulation(
            params,
            sandbox_url=None if no_sandbox else (sandbox_url or config.sandbox_url()),
            collector_url=None if no_collector else (collector_url or config.collector_url()),
            progress=sys.stderr.isatty() if progress is None else progress,
            say=lambda msg: click.echo(msg, err=True), today=today,
        )
    except SinkError as exc:
        raise click.ClickException(str(exc)) from None
    people = summary["people"]
    click.echo(f"Simulated {people['total']} people ({people['high_value']} high-value, near-misses "
               f"{people['near_miss']}) over {days} days to {params.as_of} in {summary['seconds']} s.")
    seeded = summary["sandbox"]["seeded"]
    if seeded is not None:
        click.echo("Sandbox: " + "; ".join(f"{s} " + ", ".join(f"{c} {n}" for c, n in cols.items())
                                           for s, cols in seeded.items()))
    click.echo("Event files: " + ", ".join(f"{s} {n} lines" for s, n in summary["event_files"]["lines"].items()))
    click.echo(f"Today: {summary['today']['messages']} messages, {summary['today']['note']}.")
    click.echo(f"Ground truth: {summary['ground_truth']} (traits as of {params.moment.isoformat()}: build "
               f"with GROWTH_STACK_AS_OF={params.moment.strftime('%Y-%m-%dT%H:%M:%SZ')} to compare)")


def _run_live(collector_url: str, events_per_minute: int, seed: int) -> None:
    """`--live`: send live traffic until interrupted; a collector that is briefly away is retried."""
    from growth_stack_dagster.simulate.live import run_live, shoppers
    from growth_stack_dagster.simulate.sinks import CollectorSender, SinkError

    try:
        people = shoppers(config.simulation_dir() / "ground_truth.jsonl")
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None
    if not people:
        raise click.ClickException("The ground truth holds no web shopper to simulate; generate a company with "
                                   "--customers of at least 1.")
    sender = CollectorSender(collector_url, config.write_keys())

    def send(batch: list[dict]) -> None:
        for message in batch:
            sender.add("web", message)
        try:
            sender.close()
        except SinkError as exc:  # the next tick tries again with new events
            click.echo(f"live: {exc}", err=True)

    click.echo(f"Live: about {events_per_minute} events a minute from {len(people)} web shoppers to {collector_url} "
               "(Ctrl-C stops).", err=True)
    try:
        run_live(send, people, events_per_minute, seed=seed)
    except KeyboardInterrupt:
        pass
