"""`growth-stack ingest`: load dlt sources into the warehouse now, outside Dagster."""

from __future__ import annotations

import click

from growth_stack_dagster.ingest.pipelines import SOURCES


@click.command("ingest")
@click.argument("sources", nargs=-1, type=click.Choice(sorted(SOURCES)))
@click.option("--full-reload", is_flag=True,
              help="Empty the sources' tables and cursors and read everything again "
                   "(same as GROWTH_STACK_FULL_RELOAD=<source> or the Dagster run config full_reload: true).")
def ingest_command(sources: tuple[str, ...], full_reload: bool) -> None:
    """Load SOURCES (default: every source) once into the warehouse, incrementally unless
    --full-reload; prints the rows loaded per table. Stop the Dagster runs that write the
    warehouse first: one process writes the DuckDB file at a time."""
    from growth_stack_dagster.ingest.pipelines import full_reload_requested, load_source

    for name in sources or sorted(SOURCES):
        info = load_source(name, full_reload=full_reload)
        counts = info.pipeline.last_trace.last_normalize_info.row_counts
        rows = {t: n for t, n in sorted(counts.items()) if not t.startswith("_dlt")}
        mode = "full reload" if full_reload_requested(name, full_reload) else "incremental"
        click.echo(f"{name} ({mode}): " + (", ".join(f"{t} {n}" for t, n in rows.items()) or "nothing new"))
