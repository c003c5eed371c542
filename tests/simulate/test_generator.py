"""The pure generator: determinism, the people it makes, and its ground truth."""

from __future__ import annotations

import datetime as dt
import gc
import tracemalloc
from collections import Counter

import orjson
import pytest

from growth_stack_dagster.simulate import generator as gen
from growth_stack_dagster.simulate import model
from growth_stack_dagster.simulate.sinks import EventFileSink
from tests.simulate.helpers import generate_all, recompute_high_value

AS_OF = dt.date(2026, 11, 26)


@pytest.fixture(scope="module")
def company() -> dict:
    return generate_all(gen.SimParams(customers=1200, days=120, seed=7, as_of=AS_OF))


def test_same_seed_same_company_different_seed_different_company():
    params = gen.SimParams(customers=120, days=60, seed=3, as_of=AS_OF)
    first, second = generate_all(params), generate_all(params)
    assert first == second
    other = generate_all(gen.SimParams(customers=120, days=60, seed=4, as_of=AS_OF))
    assert {line for _, _, line in other["events"]}.isdisjoint({line for _, _, line in first["events"]})
    person_seeds = lambda c: {line for s, col, line in c["seeds"] if col in ("contacts", "invoices", "users")}
    assert person_seeds(other).isdisjoint(person_seeds(first))


def test_a_person_does_not_depend_on_who_was_generated_before():
    params = gen.SimParams(customers=50, days=60, seed=3, as_of=AS_OF)
    alone = gen.generate_person(params, 37)
    in_sequence = list(gen.iter_people(params))[37]
    assert orjson.dumps(alone.truth) == orjson.dumps(in_sequence.truth)
    assert [orjson.dumps(e) for e in alone.events] == [orjson.dumps(e) for e in in_sequence.events]


def test_timestamps_come_from_as_of_not_the_wall_clock(company):
    start = (AS_OF - dt.timedelta(days=120)).isoformat()
    for source, day, line in company["events"]:
        msg = orjson.loads(line)
        assert start <= day < AS_OF.isoformat()
        assert msg["receivedAt"][:10] == day  # received on the day of the file it is in
    for source, line in company["live"]:
        assert orjson.loads(line)["timestamp"][:10] == AS_OF.isoformat()


def test_about_half_of_visitors_never_identify(company):
    visitors = [t for t in company["truth"] if t["identifiers"]["anonymous_id"]]
    never = [t for t in visitors if t["identifiers"]["user_id"] is None]
    assert 0.35 <= len(never) / len(visitors) <= 0.65
    for t in never:
        assert t["identifiers"]["user_id"] is None and len(t["identifiers"]["anonymous_id"]) == 1


def test_identified_people_use_one_to_three_devices_with_distinct_anonymous_ids(company):
    anon_to_person, sources_by_anon, users_by_anon = {}, {}, {}
    for source, _day, line in company["events"]:
        if source not in ("web", "ios"):
            continue
        msg = orjson.loads(line)
        sources_by_anon.setdefault(msg["anonymousId"], set()).add((source, msg["type"]))
        if msg.get("userId"):
            users_by_anon.setdefault(msg["anonymousId"], set()).add(msg["userId"])
    counts = Counter()
    for t in company["truth"]:
        ids = t["identifiers"]
        if ids["user_id"] is None:
            continue
        anons = ids["anonymous_id"]
        assert 1 <= len(anons) <= 3 and len(set(anons)) == len(anons)
        counts[len(anons)] += 1
        for anon in anons:
            assert not anon_to_person.get(anon), "an anonymousId belongs to one person only"
            anon_to_person[anon] = t["person_key"]
            assert users_by_anon.get(anon, {ids["user_id"]}) == {ids["user_id"]}
    assert set(counts) == {1, 2, 3}
    kinds = {k for v in sources_by_anon.values() for k in v}
    assert {("ios", "screen"), ("web", "page"), ("web", "identify"), ("ios", "identify"), ("web", "track")} <= kinds
    assert ("ios", "page") not in kinds and ("web", "screen") not in kinds


def test_messages_are_stored_segment_messages(company):
    events = Counter()
    utm = 0
    for source, _day, line in company["events"]:
        msg = orjson.loads(line)
        if source in ("web", "ios"):
            for field in ("messageId", "receivedAt", "sentAt", "originalTimestamp", "timestamp", "type", "context"):
                assert field in msg, field
            assert msg["context"]["library"]["name"] == ("analytics.js" if source == "web" else "analytics-ios")
            if msg["type"] == "track":
                events[msg["event"]] += 1
            if msg["type"] == "identify":
                assert msg["userId"].startswith("u_") and "@" in msg["traits"]["email"]
            search = msg.get("properties", {}).get("search", "")
            if "utm_source=facebook" in search:
                utm += 1
                name = search.rsplit("utm_campaign=", 1)[1]
                assert name in {c[1] for c in model.FACEBOOK_CAMPAIGNS}
                assert msg["context"]["campaign"] == {"name": name, "source": "facebook", "medium": "paid_social"}
        else:
            assert set(msg) == {"type", "messageId", "receivedAt", "body"} and msg["type"] == "webhook"
    assert {"Product Viewed", "Product Added", "Checkout Started", "Request a Quote"} <= set(events)
    assert "Order Completed" not in events
    assert utm > 0
    message_ids = [orjson.loads(line)["messageId"] for _, _, line in company["events"]]
    assert len(set(message_ids)) == len(message_ids)


def test_stripe_webhooks_carry_the_seeded_invoices(company):
    invoices = {orjson.loads(line)["id"]: orjson.loads(line) for s, c, line in company["seeds"] if c == "invoices"}
    paid_events = [orjson.loads(orjson.loads(line)["body"]) for s, _, line in company["events"] if s == "stripe"]
    # every invoice paid since the history's first day sent its webhook; older ones exist only in Stripe
    start = int(dt.datetime.combine(AS_OF - dt.timedelta(days=120), dt.time(), dt.timezone.utc).timestamp())
    since_start = {i for i, inv in invoices.items() if inv["status_transitions"]["paid_at"] >= start}
    assert since_start != set(invoices)  # the year-boundary purchases are older
    assert {e["data"]["object"]["id"] for e in paid_events} == since_start
    assert len(paid_events) == len(since_start)
    for event in paid_events:
        assert event["type"] == "invoice.paid" and event["object"] == "event"
        assert event["data"]["object"] == invoices[event["data"]["object"]["id"]]
    for inv in invoices.values():
        lines = inv["lines"]["data"]
        assert inv["subtotal"] == sum(li["amount"] for li in lines)
        discount = sum(d["amount"] for d in inv["total_discount_amounts"])
        assert inv["total"] == inv["amount_paid"] == inv["subtotal"] - discount
        assert discount == sum(a["amount"] for li in lines for a in li["discount_amounts"])
        for li in lines:
            assert li["pricing"]["price_details"]["product"] == "prod_" + li["pricing"]["price_details"]["price"][6:-4]


def test_customerio_webhooks_are_reporting_webhooks(company):
    metrics = Counter()
    for source, _, line in company["events"]:
        if source == "customerio":
            body = orjson.loads(orjson.loads(line)["body"])
            metrics[body["metric"]] += 1
            assert body["object_type"] == "email" and body["data"]["customer_id"].startswith("u_")
            assert orjson.loads(line)["messageId"] == body["event_id"]
    assert metrics["delivered"] > metrics["opened"] > metrics["clicked"] > 0


def test_emails_vary_in_case_and_spaces_across_systems(company):
    varied = spaced = cased = 0
    for t in company["truth"]:
        emails = t["identifiers"]["email"]
        if not emails:
            continue
        assert len({model.normalize_email(e) for e in emails}) == 1, emails
        varied += len(emails) > 1
        spaced += any(e != e.strip() for e in emails)
        cased += any(e != e.lower() for e in emails)
    assert varied > 100 and spaced > 30 and cased > 30


def test_hubspot_and_crm_conventions(company):
    contacts = [orjson.loads(line) for s, c, line in company["seeds"] if c == "contacts"]
    assert {c["properties"]["customer_type"] for c in contacts} == {"retail", "wholesale"}
    assert {c["properties"]["lead_qualified"] for c in contacts} == {"true", "false"}
    wholesale = [c for c in contacts if c["properties"]["customer_type"] == "wholesale"]
    assert all(c["associations"]["companies"] for c in wholesale)
    deals = [orjson.loads(line) for s, c, line in company["seeds"] if c == "deals"]
    assert deals and all(d["associations"]["contacts"] for d in deals)
    for d in deals:
        history = d["propertiesWithHistory"]["dealstage"]
        assert history[0]["value"] == d["properties"]["dealstage"]
        assert [h["timestamp"] for h in history] == sorted((h["timestamp"] for h in history), reverse=True)


def test_high_value_and_near_misses_match_the_data(company):
    objects: dict[str, list] = {}
    for system, collection, line in company["seeds"]:
        objects.setdefault(f"{system}/{collection}", []).append(orjson.loads(line))
    messages = [orjson.loads(line) for s, _, line in company["events"] if s == "web"]
    recomputed = recompute_high_value(company["truth"], objects, messages, AS_OF)
    segments = Counter()
    for t in company["truth"]:
        criteria = recomputed[t["person_key"]]
        assert criteria == t["high_value_criteria"], t["person_key"]
        assert t["is_high_value"] == all(criteria.values())
        failed = [k for k, ok in criteria.items() if not ok]
        assert t["near_miss_criterion"] == (failed[0] if len(failed) == 1 else None)
        segments[t["segment"]] += 1
        if t["segment"] == "high_value":
            assert t["is_high_value"]
    high_value = [t for t in company["truth"] if t["is_high_value"]]
    near = Counter(t["near_miss_criterion"] for t in company["truth"] if t["segment"] == "near_miss")
    assert 0.01 <= len(high_value) / len(company["truth"]) <= 0.08  # a few percent
    assert set(near) == set(model.HIGH_VALUE_CRITERIA)  # each targeted near-miss fails exactly one


def test_near_misses_stand_on_every_boundary_of_the_rule(company):
    """Among the targeted people: five purchases of exactly 100.00, six of 90.00, four over 100.00, a
    purchase at as_of - 365 days (outside), 1 s before it (outside) and 1 s after it (inside), and 24th,
    25th, 45th and 46th birthdays on as_of."""
    moment = dt.datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=dt.timezone.utc)
    year_ago = int(moment.timestamp()) - 365 * 86_400
    invoices: dict[str, list[dict]] = {}
    for _s, collection, line in company["seeds"]:
        if collection == "invoices":
            inv = orjson.loads(line)
            invoices.setdefault(inv["customer"], []).append(inv)
    shapes, year_edges, birthdays = Counter(), Counter(), Counter()
    for t in company["truth"]:
        if t["segment"] == "regular":
            continue
        mine = [inv for cus in t["identifiers"]["stripe_customer_id"] for inv in invoices.get(cus, [])]
        totals = sorted(inv["total"] for inv in mine)
        if totals == [10_000] * 5:
            shapes["five of 100.00"] += 1
        elif totals == [9_000] * 6:
            shapes["six of 90.00"] += 1
        elif len(totals) == 4 and min(totals) > 10_000:
            shapes["four over 100.00"] += 1
        for inv in mine:
            offset = inv["status_transitions"]["paid_at"] - year_ago
            if offset in (-1, 0, 1):
                year_edges[offset] += 1
                assert t["high_value_criteria"]["orders"] == (offset == 1), t["person_key"]
        dob = t["date_of_birth"] and dt.date.fromisoformat(t["date_of_birth"])
        if dob and (dob.month, dob.day) == (AS_OF.month, AS_OF.day):
            birthdays[AS_OF.year - dob.year] += 1
    assert set(shapes) == {"five of 100.00", "six of 90.00", "four over 100.00"}, shapes
    assert set(year_edges) == {-1, 0, 1}, year_edges
    assert {24, 25, 45, 46} <= set(birthdays), birthdays
    assert all(t["as_of"] == moment.isoformat() for t in company["truth"])


def test_the_ground_truth_holds_at_a_given_moment():
    """--as-of with a time: the year boundary follows the moment, to the second."""
    moment = dt.datetime(2026, 11, 26, 15, 30, 0, tzinfo=dt.timezone.utc)
    params = gen.SimParams(customers=400, days=60, seed=9, as_of=moment.date(), as_of_at=moment)
    out = generate_all(params)
    objects: dict[str, list] = {}
    for system, collection, line in out["seeds"]:
        objects.setdefault(f"{system}/{collection}", []).append(orjson.loads(line))
    paid = {inv["status_transitions"]["paid_at"] for inv in objects["stripe/invoices"]}
    assert paid & {int(moment.timestamp()) - 365 * 86_400 + d for d in (-1, 0, 1)}
    messages = [orjson.loads(line) for s, _, line in out["events"] if s == "web"]
    recomputed = recompute_high_value(out["truth"], objects, messages, moment)
    for t in out["truth"]:
        assert recomputed[t["person_key"]] == t["high_value_criteria"], t["person_key"]
        assert t["as_of"] == moment.isoformat()
    with pytest.raises(ValueError, match="must fall on the simulated day"):
        gen.SimParams(customers=1, days=60, seed=9, as_of=dt.date(2026, 11, 27), as_of_at=moment)


def test_dob_for_age_and_activity_weeks_edges():
    import random
    rng = random.Random(1)
    for as_of in (dt.date(2024, 2, 29), dt.date(2026, 3, 1), dt.date(2026, 11, 30)):
        for age in (24, 25, 45, 46):
            assert model.age_on(model.dob_for_age(rng, age, as_of), as_of) == age
            assert model.age_on(model.birthday_dob(age, as_of), as_of) == age
            if model.birthday_dob(age, as_of).day == as_of.day:  # not a 29 February moved to the 28th
                assert model.age_on(model.birthday_dob(age, as_of), as_of - dt.timedelta(days=1)) == age - 1
    monday = dt.date(2026, 11, 30)
    assert model.activity_weeks(monday)[0] == (dt.date(2026, 11, 23), dt.date(2026, 11, 29))
    sunday = dt.date(2026, 11, 29)
    assert model.activity_weeks(sunday)[0] == (dt.date(2026, 11, 16), dt.date(2026, 11, 22))


def test_no_high_value_without_four_weeks_of_history():
    truth = generate_all(gen.SimParams(customers=300, days=20, seed=1, as_of=AS_OF))["truth"]
    assert not any(t["is_high_value"] for t in truth)


def test_generation_streams_in_bounded_memory(tmp_path):
    """Peak memory of generating into the file sink does not grow with the number of people."""

    def peak(customers: int) -> int:
        params = gen.SimParams(customers=customers, days=40, seed=5, as_of=AS_OF)
        sink = EventFileSink(tmp_path / f"events{customers}", tmp_path / f"spool{customers}", max_open=32)
        gc.collect()
        tracemalloc.start()
        for out in gen.iter_people(params):
            for source, day, msg in out.events:
                sink.add(source, day, msg)
        counts = sink.close()
        _, top = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert sum(counts["files"].values()) <= 4 * 40  # one file per (source, day), not one per flush
        return top

    small, large = peak(100), peak(500)
    assert large < small * 1.3 + (512 << 10), (small, large)


def test_guest_checkout_buyers_get_one_stripe_customer_per_order_with_their_email(company):
    """Guest checkout creates a Stripe customer per order: one person, many customers, one mailbox."""
    customers = {orjson.loads(line)["id"]: orjson.loads(line) for s, col, line in company["seeds"]
                 if s == "stripe" and col == "customers"}
    invoices = Counter(orjson.loads(line)["customer"] for s, col, line in company["seeds"]
                       if s == "stripe" and col == "invoices")
    owners = Counter()
    guests = [t for t in company["truth"] if len(t["identifiers"]["stripe_customer_id"]) > 1]
    for t in company["truth"]:
        for cus in t["identifiers"]["stripe_customer_id"]:
            owners[cus] += 1
    assert set(owners) == set(customers) and set(owners.values()) == {1}  # each Stripe customer is one person's
    assert guests and any(t["is_high_value"] for t in guests)
    for t in guests:
        ids = t["identifiers"]["stripe_customer_id"]
        assert all(invoices[cus] == 1 for cus in ids)
        emails = {model.normalize_email(customers[cus]["email"]) for cus in ids}
        assert len(emails) == 1 and emails <= {model.normalize_email(e) for e in t["identifiers"]["email"]}
    share = len(guests) / sum(1 for t in company["truth"] if t["identifiers"]["stripe_customer_id"])
    assert 0.1 <= share <= 0.4
