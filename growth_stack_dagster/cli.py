"""The `growth-stack` command line: one group, one subcommand per tool.

Each subcommand lives beside the code it drives and imports heavy libraries only when it runs,
so `growth-stack collector` starts fast and never loads Dagster, dlt or DuckDB.
"""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click.Command, imported only when that command is used.
_COMMANDS = {
    "sandbox": "growth_stack_dagster.sandbox.command:sandbox_command",
    "collector": "growth_stack_dagster.collector.command:collector_command",
    "simulate": "growth_stack_dagster.simulate.command:simulate_command",
    "init": "growth_stack_dagster.instance:init_command",
    "run": "growth_stack_dagster.run_all:run_command",
    "router": "growth_stack_dagster.router.command:router_command",
    "sync": "growth_stack_dagster.activation.command:sync_command",
    "console": "growth_stack_dagster.console.command:console_command",
    "ingest": "growth_stack_dagster.ingest.command:ingest_command",
}


class _LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(_COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = _COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        return getattr(importlib.import_module(module_name), attr)


@click.group(cls=_LazyGroup)
def main() -> None:
    """Growth Stack: a warehouse-first customer data platform."""


if __name__ == "__main__":
    main()
