"""Runs one simulation: generates the company person by person and streams it into the sinks."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from growth_stack_dagster import config, eventfiles
from growth_stack_dagster.simulate import generator as gen
from growth_stack_dagster.simulate.sinks import (
    CollectorSender, CustomerioHelper, EventFileSink, JsonLinesWriter, SandboxSeeder, SinkError,
    http_session, reachable, write_csv_atomic,
)

SIMULATED_SOURCES = ("web", "ios", "stripe", "customerio")


def existing_history_days(events_root: Path, params: gen.SimParams) -> list[str]:
    """History days that already hold event files of the simulated sources (a rerun would duplicate them)."""
    start, end = params.history_start.isoformat(), params.as_of.isoformat()
    days = set()
    for path in eventfiles.closed_files(events_root):
        parsed = eventfiles.parse_closed_path(path)
        if parsed and parsed[0] in SIMULATED_SOURCES and start <= parsed[1] < end:
            days.add(parsed[1])
    return sorted(days)


def run_simulation(
    params: gen.SimParams, *, sandbox_url: str | None, collector_url: str | None,
    events_root: Path | None = None, finance_dir: Path | None = None, simulation_dir: Path | None = None,
    progress: bool = False, say: Callable[[str], None] = print, today: dt.date | None = None,
) -> dict[str, Any]:
    """Generate `params` into the sandbox (None: skip), the event files, and the collector for today.

    Today's traffic goes to the collector only when `params.as_of` is today (UTC) and the collector
    answers; otherwise it is written to as_of's event files like the history. Returns the summary,
    also written with the ground truth under `simulation_dir`.
    """
    events_root = Path(events_root or config.events_dir())
    finance_dir = Path(finance_dir or config.finance_drop_dir())
    simulation_dir = Path(simulation_dir or config.simulation_dir())
    today = today or dt.datetime.now(dt.timezone.utc).date()
    started = time.monotonic()

    clash = existing_history_days(events_root, params)
    if clash:
        raise SinkError(f"event files of {', '.join(SIMULATED_SOURCES)} already exist for {len(clash)} of the "
                        f"simulated days ({clash[0]} .. {clash[-1]}) under {events_root}; a second simulation "
                        "would duplicate them. Use a fresh GROWTH_STACK_HOME or delete those folders first.")
    if sandbox_url and not reachable(sandbox_url, "/_admin/health"):
        raise SinkError(f"no sandbox answers at {sandbox_url}; start it with `growth-stack sandbox` "
                        "or pass --no-sandbox to write only the event files.")

    live_note = "no collector URL given"
    collector = helper = None
    if collector_url:
        if params.as_of != today:
            live_note = f"--as-of {params.as_of} is not today ({today})"
        elif not reachable(collector_url, "/health"):
            live_note = f"no collector answers at {collector_url}"
        else:
            collector = CollectorSender(collector_url, config.write_keys())
            live_note = f"sent to the collector at {collector_url}"
            if sandbox_url and CustomerioHelper.available(sandbox_url):
                helper = CustomerioHelper(sandbox_url)
    if collector is None:
        say(f"Today's ({params.as_of}) traffic goes to the event files: {live_note}.")

    seeder = SandboxSeeder(sandbox_url) if sandbox_url else None
    files = EventFileSink(events_root, simulation_dir / ".spool")
    truth = JsonLinesWriter(simulation_dir / "ground_truth.jsonl")
    generated: dict[str, Counter[str]] = defaultdict(Counter)
    kinds, segments, near_miss = Counter(), Counter(), Counter()
    high_value = live_messages = live_email_files = 0

    def take(out: gen.Output) -> None:
        nonlocal live_messages, live_email_files
        for system, collection, obj in out.seeds:
            generated[system][collection] += 1
            if seeder:
                seeder.add(system, collection, obj)
        for source, day, message in out.events:
            files.add(source, day, message)
        for source, message in out.live_events:
            live_messages += 1
            if collector:
                collector.add(source, message)
            else:
                files.add(source, params.as_of.isoformat(), message)
        for email in out.live_emails:
            if helper:
                helper.send(email["helper"])
            else:
                for envelope in email["envelopes"]:
                    live_email_files += 1
                    files.add("customerio", params.as_of.isoformat(), envelope)

    try:
        take(gen.company_globals(params))
        finance_files = []
        for name, rows in gen.finance_exports(params):
            finance_files.append(write_csv_atomic(finance_dir / name, ["sku", "unit_cost", "currency", "effective_date"], rows).name)
        with _progress(progress, params.customers) as advance:
            for k, out in enumerate(gen.iter_people(params), start=1):
                take(out)
                t = out.truth
                truth.write(t)
                kinds[t["kind"]] += 1
                segments[t["segment"]] += 1
                high_value += t["is_high_value"]
                if t["near_miss_criterion"]:
                    near_miss[t["near_miss_criterion"]] += 1
                if k % 200 == 0:
                    advance(200)
            advance(params.customers % 200)
        seeded = seeder.close() if seeder else None
        file_counts = files.close()
        sent = collector.close() if collector else {}
    except BaseException:
        truth.abort()
        files.abort()
        raise
    truth_path = truth.close()
    if helper and sandbox_url:  # wait until the sandbox has delivered today's email webhooks
        http_session().post(sandbox_url.rstrip("/") + "/_admin/webhooks/flush", timeout=120)

    summary = {
        "params": {"customers": params.customers, "days": params.days, "seed": params.seed,
                   "as_of": params.as_of.isoformat(), "as_of_at": params.moment.isoformat(), "history_start": params.history_start.isoformat()},
        "people": {"total": params.customers, "by_kind": dict(sorted(kinds.items())),
                   "by_segment": dict(sorted(segments.items())), "high_value": high_value,
                   "near_miss": dict(sorted(near_miss.items()))},
        "generated": {s: dict(sorted(c.items())) for s, c in sorted(generated.items())},
        "sandbox": {"url": sandbox_url, "seeded": seeded, "requests": seeder.requests if seeder else 0},
        "event_files": {**file_counts, "root": str(events_root)},
        "today": {"date": params.as_of.isoformat(), "route": "collector" if collector else "event_files",
                  "note": live_note, "messages": live_messages, "collector_sent": sent,
                  "emails_via_helper": helper.emails if helper else 0,
                  "email_webhook_lines_in_files": live_email_files},
        "finance_files": finance_files,
        "ground_truth": str(truth_path),
        "seconds": round(time.monotonic() - started, 2),
    }
    (simulation_dir / "summary.json").write_bytes(orjson.dumps(summary, option=orjson.OPT_INDENT_2))
    return summary


class _progress:
    """A rich progress bar over people (or nothing when disabled)."""

    def __init__(self, enabled: bool, total: int):
        self.enabled, self.total = enabled, total
        self._bar = None

    def __enter__(self) -> Callable[[int], None]:
        if not self.enabled:
            return lambda n: None
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
        )
        from rich.console import Console

        self._bar = Progress(TextColumn("simulating customers"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TimeRemainingColumn(), console=Console(stderr=True))
        self._bar.start()
        task = self._bar.add_task("people", total=self.total)
        return lambda n: self._bar.advance(task, n)

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()
