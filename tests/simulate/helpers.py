"""Independent readers of what the simulator produced, used to check it against its ground truth."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from pathlib import Path
from typing import Any

import orjson

from growth_stack_dagster import eventfiles
from growth_stack_dagster.simulate import generator as gen


def generate_all(params: gen.SimParams) -> dict[str, Any]:
    """Everything the pure generator yields for `params`, as serialized lines (for comparisons)."""
    out: dict[str, Any] = {"seeds": [], "events": [], "live": [], "emails": [], "truth": []}
    parts = [gen.company_globals(params), *gen.iter_people(params)]
    for part in parts:
        out["seeds"] += [(s, c, orjson.dumps(o)) for s, c, o in part.seeds]
        out["events"] += [(s, d, orjson.dumps(msg)) for s, d, msg in part.events]
        out["live"] += [(s, orjson.dumps(msg)) for s, msg in part.live_events]
        out["emails"] += [orjson.dumps(e) for e in part.live_emails]
        if part.truth:
            out["truth"].append(part.truth)
    return out


def read_event_lines(root: Path) -> dict[tuple[str, str], list[bytes]]:
    """{(source, day): sorted lines} of every closed event file under `root`."""
    found: dict[tuple[str, str], list[bytes]] = defaultdict(list)
    for path in eventfiles.closed_files(root):
        source, day = eventfiles.parse_closed_path(path)
        found[(source, day)] += [line for line in path.read_bytes().split(b"\n") if line]
    return {k: sorted(v) for k, v in found.items()}


def _age(dob: dt.date, on: dt.date) -> int:
    years = on.year - dob.year
    if (on.month, on.day) < (dob.month, dob.day):
        years -= 1
    return years


def recompute_high_value(truth: list[dict[str, Any]], objects: dict[str, list[dict[str, Any]]],
                         messages: list[dict[str, Any]], as_of: dt.date | dt.datetime) -> dict[str, dict[str, bool]]:
    """The contract's three criteria per person key, recomputed from the generated data alone.

    objects: {"stripe/invoices": [...], "hubspot/contacts": [...]}; messages: event messages; as_of: the
    moment (a date alone means 00:00 UTC). Written independently of `simulate.model` so that a shared
    bug cannot hide.
    """
    if not isinstance(as_of, dt.datetime):
        as_of = dt.datetime(as_of.year, as_of.month, as_of.day, tzinfo=dt.timezone.utc)
    invoices_by_customer: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for inv in objects.get("stripe/invoices", []):
        if inv["status"] == "paid":
            invoices_by_customer[inv["customer"]].append(inv)
    dob_by_contact = {c["id"]: c["properties"].get("date_of_birth") for c in objects.get("hubspot/contacts", [])}
    pages_by_anon: dict[str, set[dt.date]] = defaultdict(set)
    for msg in messages:
        if msg.get("type") == "page":
            pages_by_anon[msg["anonymousId"]].add(dt.date.fromisoformat(msg["timestamp"][:10]))
    # (as_of - 365 days, as_of], in Stripe's epoch seconds
    window_end = int(as_of.timestamp())
    window_start = window_end - 365 * 86_400
    day = as_of.astimezone(dt.timezone.utc).date()
    # The 4 complete Monday..Sunday weeks that end before the week of as_of.
    sunday = day - dt.timedelta(days=day.isoweekday())
    weeks = [{sunday - dt.timedelta(days=7 * w + k) for k in range(7)} for w in range(4)]
    result = {}
    for t in truth:
        ids = t["identifiers"]
        over_100 = [inv["total"] for customer in ids["stripe_customer_id"] for inv in invoices_by_customer.get(customer, [])
                    if window_start < inv["status_transitions"]["paid_at"] <= window_end and inv["total"] > 10_000]
        dob = dob_by_contact.get(ids["hubspot_contact_id"] or "")
        age_ok = bool(dob) and 25 <= _age(dt.date.fromisoformat(dob), day) <= 45
        days: set[dt.date] = set()
        for anon in ids["anonymous_id"]:
            days |= pages_by_anon.get(anon, set())
        result[t["person_key"]] = {
            "orders": len(over_100) >= 5,
            "age": age_ok,
            "activity": all(week & days for week in weeks),
        }
    return result
