"""Benchmark: load one day of event files into the warehouse, against a bare DuckDB `read_json`.

    .venv/bin/python bench/bench_event_load.py [--events 1000000] [--files 8] [--keep DIR]

Generates N realistic Segment messages (web pages and tracks, iOS screens, server tracks,
identifies, groups, aliases, Stripe and Customer.io webhooks) for one received date, written with
`eventfiles.write_closed_file`, then prints:
  * baseline: `CREATE TABLE AS SELECT * FROM read_json(<files>, format='newline_delimited',
    union_by_name=true)` into one table, events/s;
  * loader: `capture.loader.load_partition` (validation, webhook transforms, dedup, flattening,
    typing, discards, every events.* table), events/s and step time;
  * the ratio loader/baseline (target >= 1/3) and whether 1M events load in < 10 s.
`--case-variants 0.002` makes that share of identifies spell a trait `Plan` instead of `plan` (the
loader folds them into one column); a bare read_json refuses such files, so the baseline then reads
with `ignore_errors=true`.
Wall times depend on what else runs on the machine: the load average and the CPU seconds of each run
are printed beside them.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import resource
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

import duckdb
import orjson

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from growth_stack_dagster import eventfiles  # noqa: E402
from growth_stack_dagster.capture import loader  # noqa: E402

DAY = "2026-11-20"
CASE_VARIANTS = 0.0  # share of identifies sending `Plan` instead of `plan` (--case-variants)
PRODUCTS = [(f"prod_{i:04d}", f"SKU-{i:05d}", f"Product {i}", round(5 + i * 1.37, 2)) for i in range(200)]
CAMPAIGNS = [("google", "cpc", "black_friday"), ("facebook", "paid_social", "retarget"),
             ("newsletter", "email", "weekly"), (None, None, None)]
AGENTS = ["Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 Safari/605.1.15",
          "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 Chrome/130.0 Safari/537.36"]


def _ts(base: dt.datetime, rnd: random.Random) -> str:
    return (base + dt.timedelta(seconds=rnd.uniform(0, 86_399))).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def web_message(rnd: random.Random, base: dt.datetime, i: int) -> dict:
    """A Segment message as analytics.js sends it, stamped by the collector."""
    anon = f"anon-{rnd.randrange(200_000)}"
    user = f"user-{rnd.randrange(50_000)}" if rnd.random() < 0.4 else None
    src, medium, name = rnd.choice(CAMPAIGNS)
    path = rnd.choice(["/", "/products", "/cart", "/checkout", "/blog/launch"])
    ts = _ts(base, rnd)
    context = {
        "library": {"name": "analytics.js", "version": "next-1.72.0"},
        "page": {"url": f"https://shop.example.com{path}", "path": path, "referrer": "https://www.google.com/",
                 "search": "" if not src else f"?utm_source={src}", "title": "Example Shop"},
        "userAgent": rnd.choice(AGENTS), "locale": "en-US", "ip": f"203.0.113.{rnd.randrange(255)}",
    }
    if src:
        context["campaign"] = {"source": src, "medium": medium, "name": name}
    msg = {"messageId": f"ajs-next-{uuid.UUID(int=rnd.getrandbits(128)).hex}", "anonymousId": anon,
           "timestamp": ts, "sentAt": ts, "originalTimestamp": ts, "receivedAt": ts, "context": context,
           "integrations": {}}
    if user:
        msg["userId"] = user
    kind = rnd.random()
    pid, sku, pname, price = rnd.choice(PRODUCTS)
    if kind < 0.45:
        msg.update(type="page", name="Products" if path == "/products" else None,
                   properties={"path": path, "url": context["page"]["url"], "title": "Example Shop",
                               "referrer": "https://www.google.com/", "search": ""})
    elif kind < 0.70:
        msg.update(type="track", event="Product Viewed",
                   properties={"product_id": pid, "sku": sku, "name": pname, "price": price, "currency": "USD",
                               "category": "Apparel", "position": rnd.randrange(1, 20)})
    elif kind < 0.82:
        msg.update(type="track", event="Product Added",
                   properties={"cart_id": f"cart-{rnd.randrange(90_000)}", "product_id": pid, "sku": sku,
                               "name": pname, "price": price, "quantity": rnd.randrange(1, 4)})
    elif kind < 0.88:
        msg.update(type="track", event="Checkout Started",
                   properties={"order_id": f"o-{i}", "value": price, "revenue": price, "currency": "USD",
                               "products": [{"product_id": pid, "sku": sku, "price": price, "quantity": 1}]})
    elif kind < 0.92:
        msg.update(type="track", event="Order Completed",
                   properties={"order_id": f"o-{i}", "total": price * 1.1, "revenue": price, "tax": price * 0.1,
                               "discount": 0, "coupon": rnd.choice(["", "BF20"]), "currency": "USD",
                               "products": [{"product_id": pid, "sku": sku, "price": price, "quantity": 1}]})
    elif kind < 0.97:
        msg.update(type="identify", userId=user or f"user-{rnd.randrange(50_000)}",
                   traits={"email": f"person{rnd.randrange(50_000)}@example.com", "firstName": "Ada",
                           "lastName": "Lovelace", "age": rnd.randrange(18, 80), "plan": rnd.choice(["free", "pro"]),
                           "address": {"city": "Paris", "country": "FR"}})
        if rnd.random() < CASE_VARIANTS:  # a client spelling a trait differently: it folds into one column
            msg["traits"]["Plan"] = msg["traits"].pop("plan")
    elif kind < 0.99:
        msg.update(type="group", userId=user or "user-1", groupId=f"acct-{rnd.randrange(3000)}",
                   traits={"name": "Wholesale Co", "industry": "Retail", "employees": rnd.randrange(5, 900)})
    else:
        msg.update(type="alias", userId=f"user-{rnd.randrange(50_000)}", previousId=anon)
    return msg


def ios_message(rnd: random.Random, base: dt.datetime, i: int) -> dict:
    ts = _ts(base, rnd)
    msg = {"type": "screen", "name": rnd.choice(["Home", "Product", "Cart"]),
           "messageId": str(uuid.UUID(int=rnd.getrandbits(128))), "anonymousId": f"ios-{rnd.randrange(90_000)}",
           "timestamp": ts, "sentAt": ts, "receivedAt": ts,
           "properties": {"product_id": rnd.choice(PRODUCTS)[0], "from_push": rnd.random() < 0.1},
           "context": {"library": {"name": "analytics-ios", "version": "4.1.8"},
                       "app": {"name": "Example Shop", "version": "3.2.1", "build": "321"},
                       "device": {"manufacturer": "Apple", "model": "iPhone15,2", "type": "ios"},
                       "os": {"name": "iOS", "version": "18.1"}, "locale": "fr-FR", "ip": "198.51.100.7"}}
    return msg


def webhook_line(rnd: random.Random, base: dt.datetime, i: int, source: str) -> dict:
    created = int((base + dt.timedelta(seconds=rnd.uniform(0, 86_399))).timestamp())
    if source == "customerio":
        metric = rnd.choice(["delivered", "opened", "clicked"])
        data = {"action_id": 42, "campaign_id": 7, "customer_id": f"user-{rnd.randrange(50_000)}",
                "delivery_id": f"dlv{i:012d}", "recipient": "person@example.com", "subject": "Black Friday is here",
                "identifiers": {"id": f"user-{i}", "email": "person@example.com"}}
        if metric == "clicked":
            data.update(href="https://shop.example.com/products?utm_source=newsletter", link_id=3)
        body = {"data": data, "event_id": f"01J{i:023d}", "metric": metric, "object_type": "email",
                "timestamp": created}
    else:
        pid, sku, pname, price = rnd.choice(PRODUCTS)
        cents = int(price * 100)
        body = {"id": f"evt_{i:024d}", "object": "event", "type": "invoice.paid", "created": created,
                "livemode": False, "data": {"object": {
                    "id": f"in_{i:024d}", "object": "invoice", "customer": f"cus_{rnd.randrange(20_000):014d}",
                    "customer_email": "buyer@example.com", "currency": "usd", "subtotal": cents, "total": cents,
                    "total_excluding_tax": cents, "total_discount_amounts": [], "discounts": [],
                    "status": "paid", "status_transitions": {"paid_at": created},
                    "lines": {"object": "list", "data": [{
                        "id": f"il_{i:020d}", "object": "line_item", "amount": cents, "currency": "usd",
                        "description": pname, "quantity": 1, "metadata": {"sku": sku},
                        "pricing": {"type": "price_details", "unit_amount_decimal": str(cents),
                                    "price_details": {"price": f"price_{pid}", "product": pid}}}]}}}}
    received = dt.datetime.fromtimestamp(created, dt.timezone.utc).isoformat().replace("+00:00", "Z")
    return {"type": "webhook", "messageId": str(uuid.UUID(int=rnd.getrandbits(128))), "receivedAt": received,
            "body": orjson.dumps(body).decode()}


def generate(root: Path, n: int, files: int, seed: int = 7) -> list[Path]:
    """Write about `n` messages for DAY across web, ios, server, stripe and customerio files."""
    rnd = random.Random(seed)
    base = dt.datetime.fromisoformat(DAY).replace(tzinfo=dt.timezone.utc)
    plan = [("web", 0.80, web_message), ("ios", 0.17, ios_message)]
    out: list[Path] = []
    i = 0
    for source, share, make in plan:
        count = int(n * share)
        per_file = max(1, count // max(1, files // 2))
        for start in range(0, count, per_file):
            lines = []
            for _ in range(min(per_file, count - start)):
                lines.append(orjson.dumps(make(rnd, base, i)))
                i += 1
            out.append(eventfiles.write_closed_file(root, source, DAY, lines))
    for source in ("stripe", "customerio"):
        count = (n - i) // 2 if source == "stripe" else n - i
        lines = [orjson.dumps(webhook_line(rnd, base, i + k, source)) for k in range(count)]
        i += count
        out.append(eventfiles.write_closed_file(root, source, DAY, lines))
    return [p for p in out if p]


def cpu_seconds() -> float:
    """CPU time of this process (user + system), every DuckDB thread included."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--files", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2, help="DuckDB threads for both runs (the target is 2 cores)")
    ap.add_argument("--keep", type=Path, help="reuse/keep generated files in this folder")
    ap.add_argument("--case-variants", type=float, default=0.0,
                    help="share of identifies spelling a trait `Plan` instead of `plan`")
    args = ap.parse_args()
    global CASE_VARIANTS
    CASE_VARIANTS = args.case_variants

    work = Path(tempfile.mkdtemp(prefix="bench_event_load_"))
    root = args.keep or work / "events"
    if not eventfiles.closed_files(root, DAY):
        t = time.perf_counter()
        generate(root, args.events, args.files)
        print(f"generated {args.events:,} events in {time.perf_counter() - t:.1f}s under {root}")
    files = eventfiles.closed_files(root, DAY)
    size = sum(f.stat().st_size for f in files)
    n_lines = sum(1 for f in files for _ in open(f, "rb"))
    print(f"{len(files)} files, {size / 1e6:.0f} MB, {n_lines:,} lines; load average {os.getloadavg()[0]:.2f}")

    base_db = work / "baseline.duckdb"
    con = duckdb.connect(str(base_db), config={"threads": args.threads})
    t, c = time.perf_counter(), cpu_seconds()
    file_list = ", ".join(f"'{f}'" for f in files)
    lenient = ", ignore_errors=true" if args.case_variants else ""  # it refuses keys differing in case
    con.execute(f"CREATE TABLE events AS SELECT * FROM read_json([{file_list}], "
                f"format='newline_delimited', union_by_name=true{lenient})")
    baseline_s, baseline_cpu = time.perf_counter() - t, cpu_seconds() - c
    con.close()

    wh_db = work / "warehouse.duckdb"
    con = duckdb.connect(str(wh_db), config={"threads": args.threads})
    t, c = time.perf_counter(), cpu_seconds()
    report = loader.load_partition(con, root, DAY)
    loader_s, loader_cpu = time.perf_counter() - t, cpu_seconds() - c
    con.close()

    base_rate = n_lines / baseline_s
    load_rate = n_lines / loader_s
    print(f"baseline read_json -> one table: {baseline_s:6.2f}s  {base_rate:12,.0f} events/s  "
          f"(CPU {baseline_cpu:.1f}s)")
    print(f"loader load_partition:           {loader_s:6.2f}s  {load_rate:12,.0f} events/s  "
          f"(CPU {loader_cpu:.1f}s)")
    print(f"ratio loader/baseline: {load_rate / base_rate:.2f} (target >= 0.33); in CPU seconds: "
          f"{baseline_cpu / loader_cpu:.2f} (less sensitive to other work on the machine)")
    print(f"step time for {n_lines:,} events: {loader_s:.2f}s (target < 10 s for 1,000,000)")
    print(f"loader phases (s): {report.seconds}")
    print(f"rows: {report.rows_per_table}")
    print(f"duplicates dropped: {report.duplicates_dropped}, discards: {report.discards}, "
          f"webhooks skipped: {report.webhooks_skipped}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
