"""`growth-stack sync list | plan NAME | run NAME | reset NAME`: the reverse-ETL syncs from a terminal,
through the same engine functions the Dagster assets call."""

from __future__ import annotations

import json

import click


def _spec(name: str):
    from growth_stack_dagster.activation.engine import resolve

    try:
        return resolve(name)
    except (KeyError, ValueError) as exc:
        raise click.ClickException(str(exc).strip('"')) from None


@click.group("sync")
def sync_command() -> None:
    """Reverse-ETL syncs declared in dbt_project/models/activation/syncs/."""


@sync_command.command("list")
def list_command() -> None:
    """Every declared sync: destination, object, mode, model and trigger."""
    from rich.console import Console
    from rich.table import Table

    from growth_stack_dagster.activation.declarations import DeclarationError, load_syncs

    try:
        syncs = load_syncs()
    except DeclarationError as exc:
        raise click.ClickException(str(exc)) from None
    table = Table(title="Declared syncs")
    for col in ("sync", "destination", "object", "mode", "model", "key -> match field", "trigger"):
        table.add_column(col)
    for spec in syncs.values():
        table.add_row(spec.name, spec.destination, spec.object, spec.mode, spec.model,
                      f"{spec.primary_key} -> {spec.match_field}", spec.trigger)
    Console(width=160).print(table)


@sync_command.command("plan")
@click.argument("name")
@click.option("--sample", default=3, show_default=True, help="Sample requests per operation.")
@click.option("--full-resync", is_flag=True, help="Plan as if the destination held nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the plan as JSON.")
def plan_command(name: str, sample: int, full_resync: bool, as_json: bool) -> None:
    """Dry run: what `sync run NAME` would send (counts and sample requests), without sending."""
    from growth_stack_dagster.activation.engine import plan_sync

    try:
        plan = plan_sync(_spec(name), sample=sample, full_resync=full_resync)
    except (FileNotFoundError, LookupError) as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(plan.as_dict(), indent=2, default=str))
        return
    click.echo(f"{name}: {plan.sync.destination} {plan.sync.object}, mode {plan.sync.mode}, model {plan.sync.model}")
    click.echo("  " + ", ".join(f"{n:,} {k}" for k, n in plan.counts.items()))
    click.echo("  to send: " + (", ".join(f"{n:,} {op}" for op, n in plan.operations.items() if op != "forget")
                                or "nothing"))
    for item in plan.samples:
        click.echo(f"\n  sample {item['operation']} ({len(item['keys'])} records):")
        click.echo("  " + json.dumps(item["request"], indent=2, default=str).replace("\n", "\n  "))


@sync_command.command("run")
@click.argument("name")
@click.option("--full-resync", is_flag=True, help="Send every row again, whatever the destination accepted before.")
def run_command(name: str, full_resync: bool) -> None:
    """Send the changes of one sync now."""
    from growth_stack_dagster.activation.engine import run_sync

    try:
        result = run_sync(_spec(name), full_resync=full_resync, log=click.echo)
    except (FileNotFoundError, LookupError, RuntimeError) as exc:
        raise click.ClickException(str(exc)) from None
    for reason, n in sorted(result.rejection_reasons.items()):
        click.echo(f"  rejected {n:,}: {reason}")
    if result.status != "success":
        raise click.ClickException(result.message)


@sync_command.command("reset")
@click.argument("name")
@click.confirmation_option(prompt="Forget what the destination accepted, so the next run sends every row?")
def reset_command(name: str) -> None:
    """Full resync: forget the accepted checksums of one sync (destination ids are kept)."""
    from growth_stack_dagster.activation.engine import reset_sync

    n = reset_sync(_spec(name))
    click.echo(f"{name}: {n:,} records will be sent again by the next run.")
