"""A small live simulation for the demo: the example company's shoppers keep browsing while a user
watches, as page views and product views sent through the collector like their SDKs send them.

It reads who exists from the ground truth the simulator wrote (`simulation/ground_truth.jsonl`), so
that live events belong to known devices and users and flow into their journeys.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import random
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from growth_stack_dagster.simulate import model as m

WEB_LIBRARY = {"name": "analytics.js", "version": "next-1.72.0"}


@dataclasses.dataclass(frozen=True)
class Shopper:
    """A web device of a simulated person: its anonymous id, and the user id once identified."""

    anonymous_id: str
    user_id: str | None


def shoppers(ground_truth: Path) -> list[Shopper]:
    """Every web device in the ground truth; raises FileNotFoundError with what to run first."""
    if not ground_truth.exists():
        raise FileNotFoundError(f"{ground_truth} does not exist: generate the company first "
                                "(`growth-stack simulate`), then start the live simulation.")
    out: list[Shopper] = []
    with ground_truth.open() as f:
        for line in f:
            person = json.loads(line)
            user_id = person.get("identifiers", {}).get("user_id")
            for device in person.get("devices", []):
                if device.get("source") == "web" and device.get("anonymous_id"):
                    out.append(Shopper(device["anonymous_id"], user_id))
    return out


def live_messages(people: list[Shopper], rng: random.Random, now: dt.datetime) -> Iterator[dict[str, Any]]:
    """An endless stream of client messages: a page view, often followed by a product view."""
    products = m.catalog()
    while True:
        shopper = rng.choice(people)
        product = rng.choice(products)
        path = f"/products/{product.sku.lower()}"
        page = {"path": path, "referrer": "", "search": "", "title": f"{product.name} - Example Shop",
                "url": f"https://{m.SHOP_DOMAIN}{path}"}
        base = {"anonymousId": shopper.anonymous_id, **({"userId": shopper.user_id} if shopper.user_id else {}),
                "context": {"library": WEB_LIBRARY, "locale": "en-US", "page": page}}
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        yield {**base, "type": "page", "name": page["title"], "properties": page,
               "messageId": str(uuid.uuid4()), "originalTimestamp": stamp}
        if rng.random() < 0.5:
            yield {**base, "type": "track", "event": "Product Viewed",
                   "properties": {"product_id": product.sku, "sku": product.sku, "name": product.name,
                                  "category": product.category, "price": product.unit_amount / 100,
                                  "currency": "usd"},
                   "messageId": str(uuid.uuid4()), "originalTimestamp": stamp}


def run_live(send: Callable[[list[dict[str, Any]]], None], people: list[Shopper], events_per_minute: int,
             seed: int = 0, tick_seconds: float = 5.0, ticks: int | None = None,
             sleep: Callable[[float], None] = time.sleep) -> int:
    """Every `tick_seconds`, `send` a batch of about events_per_minute * tick / 60 messages stamped now;
    `ticks` None runs until interrupted. Returns the messages sent."""
    rng = random.Random(seed)
    per_tick = max(1, round(events_per_minute * tick_seconds / 60))
    sent, tick = 0, 0
    while ticks is None or tick < ticks:
        stream = live_messages(people, rng, dt.datetime.now(dt.timezone.utc))
        batch = [next(stream) for _ in range(per_tick)]
        send(batch)
        sent += len(batch)
        tick += 1
        if ticks is None or tick < ticks:
            sleep(tick_seconds)
    return sent
