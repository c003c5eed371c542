"""Pure generation of the example company, one person at a time.

`company_globals(params)` gives the shared objects (owners, catalog, coupons, Facebook campaigns
and their daily insights); `generate_person(params, index)` gives everything one person leaves
behind in every system; `finance_exports(params)` the SKU cost files. Each is a pure function of
the parameters, so generation streams in any order with bounded memory and is reproducible.

Outputs are plain data: seed objects `(system, collection, object)` in each real API's JSON shape
(see the seeding contract), history messages `(source, YYYY-MM-DD, message)` exactly as the
collector stores them, and today's live traffic for the collector and the Customer.io helper.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import unicodedata
from collections.abc import Iterator
from typing import Any

import orjson

from growth_stack_dagster.simulate import model as m
from growth_stack_dagster.simulate.model import DAY_MS, Product, iso_ms, rand_int

from growth_stack_dagster.sandbox.customerio import reporting_webhook_payload

WEB_LIBRARY = {"name": "analytics.js", "version": "next-1.72.0"}
IOS_LIBRARY = {"name": "analytics-ios", "version": "4.1.8"}
STRIPE_API_VERSION = "2026-10-28.endive"
# Shares of repeat buyers who check out as guests (one Stripe customer per order): of everyone, and of
# the high-value and near-miss people (so that the ground truth always holds some).
GUEST_CHECKOUT_SHARE, GUEST_CHECKOUT_SHARE_TARGETED = 0.2, 0.4


@dataclasses.dataclass(frozen=True)
class SimParams:
    """What one simulation covers: `customers` people, `days` days of history before `as_of`."""

    customers: int
    days: int
    seed: int
    as_of: dt.date
    # The moment (UTC) the ground truth's traits hold at, on the as_of day; None: 00:00 UTC of as_of.
    as_of_at: dt.datetime | None = None

    def __post_init__(self) -> None:
        if self.as_of_at is not None and self.as_of_at.astimezone(dt.timezone.utc).date() != self.as_of:
            raise ValueError(f"--as-of {self.as_of_at.isoformat()} must fall on the simulated day {self.as_of}.")
        if self.customers < 0:
            raise ValueError(f"--customers must be 0 or more, not {self.customers}.")
        if self.days < 1:
            raise ValueError(f"--days must be at least 1, not {self.days}.")

    @property
    def moment(self) -> dt.datetime:
        """The point in time the ground truth holds at (what dbt's `as_of` must be to compare)."""
        return self.as_of_at.astimezone(dt.timezone.utc) if self.as_of_at else m.as_of_moment(self.as_of)

    @property
    def history_start(self) -> dt.date:
        return self.as_of - dt.timedelta(days=self.days)

    def day(self, offset: int) -> dt.date:
        """Day `offset` of the simulation: 0 is the first history day, `days` is as_of (today)."""
        return self.history_start + dt.timedelta(days=offset)


@dataclasses.dataclass
class Output:
    """What one generation step produced.

    seeds: (system, collection, object) for `POST /_admin/seed`; events: (source, day, message)
    received before as_of; live_events: (source, message) received on as_of; live_emails:
    Customer.io emails on as_of as {"helper": body for the sandbox's `_sandbox/messages`, "envelopes":
    the webhook lines to write instead when that helper cannot be used}; truth: the person's ground truth.
    """

    seeds: list[tuple[str, str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    events: list[tuple[str, str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    live_events: list[tuple[str, dict[str, Any]]] = dataclasses.field(default_factory=list)
    live_emails: list[dict[str, Any]] = dataclasses.field(default_factory=list)  # {"helper", "envelopes"}
    truth: dict[str, Any] | None = None


# ============================================================================ shared objects

def company_globals(params: SimParams) -> Output:
    """Owners, products, prices, coupons, Facebook campaigns and their daily insights."""
    out = Output()
    t0 = m.day_start_ms(params.history_start) - 60 * DAY_MS  # the shop existed before the history
    for oid, first, last in m.OWNERS:
        out.seeds.append(("hubspot", "owners", {
            "id": oid, "email": f"{first.lower()}.{last.lower()}@{m.SHOP_DOMAIN}", "firstName": first,
            "lastName": last, "userId": int(oid) + 9_000_000, "createdAt": iso_ms(t0), "updatedAt": iso_ms(t0),
            "archived": False, "type": "PERSON", "teams": [],
        }))
    created = t0 // 1000
    for p in m.catalog():
        out.seeds.append(("stripe", "products", {
            "id": p.product_id, "object": "product", "active": True, "created": created,
            "default_price": p.price_id, "description": f"{p.name} ({p.sku})", "images": [],
            "livemode": False, "marketing_features": [], "metadata": {"sku": p.sku, "category": p.category},
            "name": p.name, "package_dimensions": None, "shippable": True, "statement_descriptor": None,
            "tax_code": None, "type": "service", "unit_label": None, "updated": created, "url": None,
        }))
        out.seeds.append(("stripe", "prices", _price_object(p, created)))
    for c in m.COUPONS:
        out.seeds.append(("stripe", "coupons", _coupon_object(c, created)))
    fb_created = m.fb_time(t0)
    for cid, name, objective in m.FACEBOOK_CAMPAIGNS:
        out.seeds.append(("facebook", "campaigns", {
            "id": cid, "account_id": m.FACEBOOK_ACCOUNT_ID, "name": name, "status": "ACTIVE",
            "objective": objective, "created_time": fb_created, "updated_time": fb_created,
        }))
        for off in range(params.days):
            rng = m.person_rng(params.seed, off, f"facebook:{cid}")
            impressions = rng.randint(2_000, 40_000)
            clicks = max(1, int(impressions * rng.uniform(0.006, 0.03)))
            day = params.day(off).isoformat()
            out.seeds.append(("facebook", "insights", {
                "id": f"{cid}:{day}", "account_id": m.FACEBOOK_ACCOUNT_ID, "campaign_id": cid,
                "campaign_name": name, "date_start": day, "date_stop": day,
                "spend": f"{impressions * rng.uniform(0.004, 0.012):.2f}",
                "impressions": str(impressions), "clicks": str(clicks),
            }))
    return out


def finance_exports(params: SimParams) -> Iterator[tuple[str, list[dict[str, str]]]]:
    """(file name, rows) of the finance team's SKU cost exports, one every 30 days of history."""
    for off in range(0, params.days, 30):
        day = params.day(off)
        rows = []
        for p in m.catalog():
            rng = m.person_rng(params.seed, off, f"cost:{p.sku}")
            rows.append({"sku": p.sku, "unit_cost": f"{p.unit_amount * rng.uniform(0.32, 0.55) / 100:.2f}",
                         "currency": "USD", "effective_date": day.isoformat()})
        yield f"sku_costs_{day.isoformat()}.csv", rows


def _price_object(p: Product, created: int) -> dict[str, Any]:
    return {
        "id": p.price_id, "object": "price", "active": True, "billing_scheme": "per_unit", "created": created,
        "currency": "usd", "custom_unit_amount": None, "livemode": False, "lookup_key": p.sku.lower(),
        "metadata": {"sku": p.sku}, "nickname": None, "product": p.product_id, "recurring": None,
        "tax_behavior": "unspecified", "tiers_mode": None, "transform_quantity": None, "type": "one_time",
        "unit_amount": p.unit_amount, "unit_amount_decimal": str(p.unit_amount),
    }


def _coupon_object(c: dict[str, Any], created: int) -> dict[str, Any]:
    return {
        "id": c["id"], "object": "coupon", "amount_off": c["amount_off"],
        "created": created, "currency": "usd" if c["amount_off"] else None, "duration": "once",
        "livemode": False, "max_redemptions": None, "metadata": {}, "name": c["name"],
        "percent_off": c["percent_off"], "redeem_by": None, "times_redeemed": 0, "valid": True,
    }


# ============================================================================ one person

@dataclasses.dataclass
class _Device:
    anonymous_id: str
    kind: str  # "web" | "ios"
    user_agent: str
    ip: str
    skew_ms: int
    ios_model: str = ""
    vendor_id: str = ""
    identified: bool = False


@dataclasses.dataclass
class _Session:
    device: int
    off: int  # simulation day offset
    start_ms: int
    identify: bool = False
    utm: tuple[str, str, str] | None = None  # (source, medium, campaign)
    landing_sku: str | None = None
    checkout: dict[str, Any] | None = None  # the order this session checks out
    quote: bool = False


def generate_person(params: SimParams, index: int) -> Output:
    """Everything person `index` (0-based) leaves in every system, plus their ground truth."""
    return _Person(params, index).build()


class _Person:
    def __init__(self, params: SimParams, index: int):
        self.p = params
        self.index = index
        self.n = index + 1
        self.rng = m.person_rng(params.seed, index)
        self.out = Output()
        self.today = params.days  # day offset of as_of
        self.products = m.catalog()
        self.retail = [p for p in self.products if not p.wholesale]
        self.wholesale_products = [p for p in self.products if p.wholesale]
        self.invoices: list[tuple[dt.date, int]] = []
        self.page_days: set[dt.date] = set()
        self.emails: set[str] = set()
        self.ids: dict[str, Any] = {}

    # ------------------------------------------------------------------ plan
    def build(self) -> Output:
        rng, p = self.rng, self.p
        self.segment, self.intended_miss = "regular", None
        u = rng.random()
        if p.days >= m.MIN_DAYS_FOR_HIGH_VALUE and u < 0.035:
            self.segment = "high_value"
        elif p.days >= m.MIN_DAYS_FOR_HIGH_VALUE and u < 0.07:
            self.segment, self.intended_miss = "near_miss", rng.choice(m.HIGH_VALUE_CRITERIA)
        targeted = self.segment != "regular"
        r = rng.random()
        self.kind = "shopper" if targeted or r >= 0.53 else ("offline_lead" if r < 0.06 else "anonymous")
        self.first = rng.choice(m.FIRST_NAMES)
        self.last = rng.choice(m.LAST_NAMES)
        ascii_last = unicodedata.normalize("NFKD", self.last).encode("ascii", "ignore").decode().lower()
        self.canonical_email = f"{self.first.lower()}.{ascii_last}{self.n}@{rng.choice(m.EMAIL_DOMAINS)}"
        self.user_id = f"u_{self.n}" if self.kind == "shopper" else None
        self.devices = self._devices()
        last_hist = self.today - 1
        if targeted:
            self.first_off = rng.randint(0, self.today - m.MIN_DAYS_FOR_HIGH_VALUE)
            self.id_off = rng.randint(self.first_off, self.today - m.MIN_DAYS_FOR_HIGH_VALUE)
        else:
            # Sales leads are entered in the CRM before today; shoppers may first visit today.
            self.first_off = rng.randint(0, self.today - (self.kind == "offline_lead"))
            self.id_off = min(self.today, self.first_off + int(rng.expovariate(1 / 3)))
        self.wholesale = (self.kind == "offline_lead" and rng.random() < 0.7) or (
            self.kind == "shopper" and not targeted and rng.random() < 0.08)
        self.dob = self._dob() if self.kind != "anonymous" else None
        self.missing_week = None
        if self.intended_miss == "activity":
            self.missing_week = rng.choice(m.activity_weeks(p.as_of))

        sessions = self._sessions()
        orders = self._plan_orders(sessions, last_hist) if self.kind == "shopper" else []
        deliveries = self._plan_emails(sessions) if self.kind == "shopper" else []
        if self.missing_week:  # an "activity" near-miss browses the web in only 3 of the 4 weeks
            lo, hi = (m.day_start_ms(d) for d in self.missing_week)
            sessions = [s for s in sessions
                        if not (self.devices[s.device].kind == "web" and lo <= s.start_ms < hi + DAY_MS)]
        self._render_sessions(sorted(sessions, key=lambda s: s.start_ms))

        self.wholesale_orders: list[dict[str, Any]] = []
        if self.kind in ("shopper", "offline_lead"):
            self._hubspot()
        if orders or self.wholesale_orders:
            self._stripe(orders + self.wholesale_orders)
        if self.kind == "shopper" and self.id_off <= self.today:
            self._customerio(deliveries)
        if self.kind != "anonymous" and rng.random() < (0.25 if self.kind == "shopper" else 0.1):
            self._zendesk()
        self.out.truth = self._truth()
        return self.out

    def _devices(self) -> list[_Device]:
        rng = self.rng
        if self.kind == "offline_lead":
            return []
        # Someone who never signs in cannot be linked across devices, so anonymous visitors have one.
        count = 1 if self.kind == "anonymous" else rng.choices((1, 2, 3), (45, 35, 20))[0]
        devices = []
        for k in range(count):
            kind = "web" if k == 0 or self.kind == "anonymous" or rng.random() < 0.5 else "ios"
            devices.append(_Device(
                anonymous_id=m.rand_uuid(rng), kind=kind,
                user_agent=rng.choice(m.WEB_USER_AGENTS) if kind == "web" else "",
                ip=f"{rng.choice((81, 93, 145, 178, 203))}.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
                skew_ms=rng.randint(-90_000, 90_000),
                ios_model=rng.choice(m.IOS_MODELS) if kind == "ios" else "",
                vendor_id=m.rand_uuid(rng).upper() if kind == "ios" else "",
            ))
        return devices

    def _dob(self) -> dt.date:
        rng = self.rng
        if self.segment == "high_value" or (self.segment == "near_miss" and self.intended_miss != "age"):
            if rng.random() < 0.2:  # a 25th or 45th birthday on as_of: just inside the range
                return m.birthday_dob(rng.choice((m.HIGH_VALUE_MIN_AGE, m.HIGH_VALUE_MAX_AGE)), self.p.as_of)
            age = rng.randint(m.HIGH_VALUE_MIN_AGE, m.HIGH_VALUE_MAX_AGE)
        elif self.intended_miss == "age":  # just outside the range, on either side, half on the birthday
            age = rng.choice((m.HIGH_VALUE_MIN_AGE - 1, m.HIGH_VALUE_MAX_AGE + 1))
            if rng.random() < 0.5:
                return m.birthday_dob(age, self.p.as_of)
        else:
            age = rng.randint(18, 74)
        return m.dob_for_age(rng, age, self.p.as_of)

    def _start(self, off: int) -> int:
        # Sessions start 06:00-22:00 UTC and last minutes, so every message is received that same day.
        return m.day_start_ms(self.p.day(off)) + self.rng.randint(6 * 3600, 22 * 3600) * 1000 + self.rng.randrange(1000)

    def _usable_devices(self, off: int) -> list[int]:
        """Devices a session on day `off` can use: other devices only once the person has signed up."""
        if self.user_id and off >= self.id_off:
            return list(range(len(self.devices)))
        return [0]

    def _sessions(self) -> list[_Session]:
        rng, today = self.rng, self.today
        if not self.devices:
            return []
        first = _Session(0, self.first_off, self._start(self.first_off))
        if rng.random() < 0.35:
            first.utm = ("facebook", "paid_social", rng.choice(m.FACEBOOK_CAMPAIGNS[:4])[1])
        sessions = [first]
        if self.user_id:
            if self.id_off == self.first_off:
                first.identify = True
            else:
                sessions.append(_Session(0, self.id_off, self._start(self.id_off), identify=True))
        extra = rng.randint(2, 6) if self.segment != "regular" else rng.choices(range(7), (20, 25, 20, 15, 10, 6, 4))[0]
        if self.kind == "anonymous":
            extra = rng.choices((0, 1, 2), (50, 35, 15))[0]
        for _ in range(extra):
            off = rng.randint(self.first_off, today)
            dev = rng.choice(self._usable_devices(off))
            s = _Session(dev, off, self._start(off))
            if rng.random() < 0.1:
                s.utm = ("facebook", "paid_social", rng.choice(m.FACEBOOK_CAMPAIGNS)[1])
            s.quote = self.wholesale and rng.random() < 0.5
            sessions.append(s)
        if self.segment != "regular":  # a web visit in each of the 4 weeks before as_of
            web = [i for i, d in enumerate(self.devices) if d.kind == "web"]
            for lo, _hi in m.activity_weeks(self.p.as_of):
                off = (lo - self.p.history_start).days + rng.randrange(7)
                sessions.append(_Session(rng.choice(web), off, self._start(off)))
        return sessions

    # ------------------------------------------------------------------ orders
    def _plan_orders(self, sessions: list[_Session], last_hist: int) -> list[dict[str, Any]]:
        rng = self.rng
        lo = max(self.id_off, self.today - 365)
        if lo > last_hist:
            return []
        targeted_orders = self.segment == "high_value" or (self.segment == "near_miss" and self.intended_miss != "orders")
        # Each near-miss on the orders criterion stands on one boundary of the rule.
        variant = rng.choices(("exact_100", "six_90", "four", "year_ago"), (1, 1, 1, 2))[0] \
            if self.intended_miss == "orders" else None
        # Some high-value people qualify only through a purchase 1 second inside the year.
        just_inside = self.segment == "high_value" and rng.random() < 0.25
        fixed_items = {"exact_100": (m.EXACT_TWENTY_SKU, 5), "six_90": (m.NINETY_SKU, 5)}.get(variant)
        if targeted_orders:
            count = 4 if just_inside else rng.randint(5, 8)
        elif variant:
            count = {"exact_100": 5, "six_90": 6, "four": 4, "year_ago": 4}[variant]
        elif rng.random() < 0.6:
            count = min(9, 1 + int(rng.expovariate(1 / 1.2)))
        else:
            return []
        orders = []
        days = sorted(rng.randint(lo, last_hist) for _ in range(count))
        for k, off in enumerate(days):
            if fixed_items:  # five mugs of 20.00 (exactly 100.00), or five tees of 18.00 (90.00)
                items = [(next(p for p in self.retail if p.sku == fixed_items[0]), fixed_items[1])]
                coupon = None
            else:
                items = [(rng.choice(self.retail), rng.choices((1, 2, 3), (75, 20, 5))[0])
                         for _ in range(rng.choices((1, 2, 3), (60, 30, 10))[0])]
                coupon = rng.choice(("WELCOME10", "SPRING5")) if rng.random() < 0.2 else None
                if coupon == "WELCOME10" and k > 0:
                    coupon = "SPRING5"
            dev = rng.choice(self._usable_devices(off))
            s = _Session(dev, off, self._start(off))
            order = {"off": off, "items": items, "coupon": coupon, "paid_ms": s.start_ms + 20 * 60_000 + rng.randrange(60_000)}
            s.checkout = order
            sessions.append(s)
            orders.append(order)
        if targeted_orders or variant in ("four", "year_ago"):
            # Every purchase over 100.00 on its own, even with a small basket and a coupon.
            for order in orders:
                while self._order_total(order) <= m.HIGH_VALUE_MIN_ORDER_CENTS:
                    order["items"].append((rng.choice(self.retail), 1))
        if just_inside or variant == "year_ago":
            # One more purchase over 100.00 at as_of - 365 days + 1 s (inside the year), or exactly at
            # as_of - 365 days or 1 s before it (outside). Bought by phone long ago: only Stripe has it.
            shift = 1 if just_inside else (0, -1)[self.index % 2]
            paid = self.p.moment - m.HIGH_VALUE_YEAR + dt.timedelta(seconds=shift)
            prod = max(self.retail, key=lambda p: p.unit_amount)
            orders.append({"off": None, "items": [(prod, 1)], "coupon": None, "paid_ms": m.datetime_to_ms(paid)})
        return orders

    @staticmethod
    def _order_total(order: dict[str, Any]) -> int:
        subtotal = sum(p.unit_amount * q for p, q in order["items"])
        return subtotal - _discount_cents(order["coupon"], subtotal)

    # ------------------------------------------------------------------ email
    def _plan_emails(self, sessions: list[_Session]) -> list[dict[str, Any]]:
        """Weekly campaign sends after sign-up, each maybe opened and clicked (a click may visit the shop)."""
        rng, deliveries = self.rng, []
        if self.id_off > self.today:
            return []
        for week_start in range(self.id_off + 1, self.today + 1, 7):
            if rng.random() >= 0.5:
                continue
            off = min(self.today, week_start + rng.randrange(7))
            campaign = rng.choice(m.EMAIL_CAMPAIGNS)
            sent = m.day_start_ms(self.p.day(off)) + rng.randint(8 * 3600, 12 * 3600) * 1000
            d = {"off": off, "campaign": campaign, "delivered_ms": sent + rng.randint(2_000, 60_000),
                 "delivery_id": "RPIL" + m.rand_b62(rng, 24), "opened_ms": None, "clicked_ms": None}
            if rng.random() < 0.45:
                d["opened_ms"] = d["delivered_ms"] + rng.randint(60_000, 8 * 3_600_000)
                if rng.random() < 0.3:
                    d["clicked_ms"] = d["opened_ms"] + rng.randint(5_000, 120_000)
                    if rng.random() < 0.6 and self.devices:
                        dev = rng.choice(self._usable_devices(off))
                        s = _Session(dev, off, d["clicked_ms"] + 2_000, utm=("customerio", "email", f"campaign_{campaign[0]}"),
                                     landing_sku=campaign[3])
                        sessions.append(s)
            deliveries.append(d)
        return deliveries

    # ------------------------------------------------------------------ events
    def _render_sessions(self, sessions: list[_Session]) -> None:
        for s in sessions:
            dev = self.devices[s.device]
            t = s.start_ms
            emit = self._emitter(dev, s.off)
            if dev.kind == "web":
                path, search, title = "/", "", "Example Shop"
                if s.landing_sku:
                    path = f"/products/{s.landing_sku.lower()}"
                    title = next(p.name for p in self.products if p.sku == s.landing_sku)
                if s.utm:
                    search = f"?utm_source={s.utm[0]}&utm_medium={s.utm[1]}&utm_campaign={s.utm[2]}"
                t = emit(t, self._page(path, search, title, s.utm))
            else:
                t = emit(t, {"type": "screen", "name": "Home", "properties": {}})
            if s.identify or (self.user_id and not dev.identified and s.off >= self.id_off):
                dev.identified = True
                t = emit(t, {"type": "identify", "traits": self._traits()})
            views = [self.rng.choice(self.retail) for _ in range(self.rng.choices((0, 1, 2, 3), (15, 40, 30, 15))[0])]
            if s.checkout:
                views += [p for p, _q in s.checkout["items"]]
            for prod in views:
                if dev.kind == "web":
                    t = emit(t, self._page(f"/products/{prod.sku.lower()}", "", prod.name, None))
                else:
                    t = emit(t, {"type": "screen", "name": "Product Detail", "properties": {"sku": prod.sku}})
                t = emit(t, {"type": "track", "event": "Product Viewed", "properties": _product_props(prod)})
            if s.checkout:
                cart = m.rand_hex(self.rng, 16)
                for prod, qty in s.checkout["items"]:
                    t = emit(t, {"type": "track", "event": "Product Added",
                                 "properties": {**_product_props(prod), "quantity": qty, "cart_id": cart}})
                subtotal = sum(p.unit_amount * q for p, q in s.checkout["items"])
                props = {"checkout_id": m.rand_hex(self.rng, 16), "value": subtotal / 100, "currency": "USD",
                         "products": [{**_product_props(p), "quantity": q} for p, q in s.checkout["items"]]}
                if s.checkout["coupon"]:
                    props["coupon"] = s.checkout["coupon"]
                t = emit(t, {"type": "track", "event": "Checkout Started", "properties": props})
            elif views and self.rng.random() < 0.25:
                t = emit(t, {"type": "track", "event": "Product Added",
                             "properties": {**_product_props(views[-1]), "quantity": 1, "cart_id": m.rand_hex(self.rng, 16)}})
            if s.quote:
                prod = self.rng.choice(self.wholesale_products)
                emit(t, {"type": "track", "event": "Request a Quote",
                         "properties": {"product_id": prod.product_id, "sku": prod.sku, "quantity": self.rng.choice((24, 48, 96)),
                                        "company": self._company_name()}})

    def _emitter(self, dev: _Device, off: int):
        rng = self.rng
        source = "web" if dev.kind == "web" else "ios"
        day = self.p.day(off).isoformat()

        def emit(t: int, msg: dict[str, Any]) -> int:
            # Segment's clock-skew model: the client stamps with its own clock, the server corrects it.
            original = t + dev.skew_ms
            sent = original + rand_int(rng, 300, 5_000)
            network = rand_int(rng, 15, 900)
            received = t + (sent - original) + network
            msg["anonymousId"] = dev.anonymous_id
            if dev.identified:
                msg["userId"] = self.user_id
            msg["context"] = self._context(dev, msg)
            msg["messageId"] = m.rand_uuid(rng)
            msg["originalTimestamp"] = iso_ms(original)
            msg["sentAt"] = iso_ms(sent)
            msg["receivedAt"] = iso_ms(received)
            msg["timestamp"] = iso_ms(received - (sent - original))
            if msg["type"] == "page" and off < self.today:
                self.page_days.add(m.ms_to_date(received - (sent - original)))
            if msg["type"] == "identify":
                self.emails.add(msg["traits"]["email"])
            if off < self.today:
                self.out.events.append((source, day, msg))
            else:
                self.out.live_events.append((source, msg))
            return t + rand_int(rng, 4_000, 70_000)

        return emit

    def _page(self, path: str, search: str, title: str, utm: tuple[str, str, str] | None) -> dict[str, Any]:
        url = f"https://{m.SHOP_DOMAIN}{path}{search}"
        props = {"path": path, "referrer": "https://www.facebook.com/" if utm and utm[0] == "facebook" else "",
                 "search": search, "title": title, "url": url}
        msg = {"type": "page", "name": title, "properties": props}
        if utm:
            msg["_campaign"] = {"name": utm[2], "source": utm[0], "medium": utm[1]}
        return msg

    def _context(self, dev: _Device, msg: dict[str, Any]) -> dict[str, Any]:
        if dev.kind == "web":
            ctx: dict[str, Any] = {"library": WEB_LIBRARY, "userAgent": dev.user_agent, "ip": dev.ip, "locale": "en-US"}
            if msg["type"] == "page":
                ctx["page"] = dict(msg["properties"])
            campaign = msg.pop("_campaign", None)
            if campaign:
                ctx["campaign"] = campaign
            return ctx
        return {"library": IOS_LIBRARY, "ip": dev.ip, "locale": "en-US", "timezone": "Europe/Berlin",
                "app": {"name": "Example Shop", "version": "3.2.1", "build": "321", "namespace": "com.example.shop"},
                "device": {"id": dev.vendor_id, "manufacturer": "Apple", "model": dev.ios_model, "type": "ios"},
                "os": {"name": "iOS", "version": "18.1"}, "network": {"wifi": self.rng.random() < 0.6}}

    def _traits(self) -> dict[str, Any]:
        if not hasattr(self, "_identify_email"):
            self._identify_email = m.email_variant(self.rng, self.canonical_email,
                                                   self.rng.choice(("lower", "lower", "title", "spaces")))
        return {"email": self._identify_email, "name": f"{self.first} {self.last}",
                "firstName": self.first, "lastName": self.last}

    # ------------------------------------------------------------------ hubspot
    def _hubspot(self) -> None:
        rng = self.rng
        contact_id = str(1_000_000_000 + self.n)
        created_off = self.first_off if self.kind == "offline_lead" else self.id_off
        created = self._start(created_off)
        modified = min(created + rng.randint(0, 20) * DAY_MS, max(created, m.day_start_ms(self.p.as_of) - 1))
        owner = rng.choice(m.OWNERS)[0] if self.wholesale or rng.random() < 0.2 else None
        email = self._system_email()
        props = {
            "email": email, "firstname": self.first, "lastname": self.last,
            "date_of_birth": self.dob.isoformat(), "customer_type": "wholesale" if self.wholesale else "retail",
            "lead_qualified": "true" if rng.random() < (0.65 if self.wholesale else 0.1) else "false",
            "lifecyclestage": "lead" if self.kind == "offline_lead" else "customer",
            "createdate": iso_ms(created), "lastmodifieddate": iso_ms(modified), "hs_object_id": contact_id,
        }
        if owner:
            props["hubspot_owner_id"] = owner
        contact: dict[str, Any] = {"id": contact_id, "properties": props, "createdAt": iso_ms(created),
                                   "updatedAt": iso_ms(modified), "archived": False}
        self.ids["hubspot_contact_id"] = contact_id
        self.contact_created = created
        if self.wholesale:
            company_id = str(2_000_000_000 + self.n)
            contact["associations"] = {"companies": [company_id]}
            self.out.seeds.append(("hubspot", "companies", {
                "id": company_id, "properties": {
                    "name": self._company_name(), "domain": f"{self.last.lower()}-{self.n}.example.com",
                    "industry": "RETAIL", "hubspot_owner_id": owner, "createdate": iso_ms(created),
                    "hs_lastmodifieddate": iso_ms(modified), "hs_object_id": company_id},
                "createdAt": iso_ms(created), "updatedAt": iso_ms(modified), "archived": False,
                "associations": {"contacts": [contact_id]}}))
            self.company_id, self.owner = company_id, owner
        self.out.seeds.append(("hubspot", "contacts", contact))
        if self.wholesale:
            self._deals_and_calls(contact_id, created_off)

    def _company_name(self) -> str:
        return f"{self.last} {m.COMPANY_SUFFIXES[self.n % len(m.COMPANY_SUFFIXES)]}"

    def _deals_and_calls(self, contact_id: str, created_off: int) -> None:
        rng, last_hist = self.rng, self.today - 1
        if created_off > last_hist:  # the lead was entered today: no sales history yet
            return
        for j in range(rng.choice((1, 1, 2))):
            deal_id = str(3_000_000_000 + self.n * 4 + j)
            off = min(last_hist, created_off + rng.randint(0, 10))
            t = self._start(off)
            final = rng.choices(range(len(m.DEAL_STAGES)), (10, 10, 10, 10, 10, 35, 15))[0]
            path = list(m.DEAL_STAGES[: final + 1]) if final < 5 else list(m.DEAL_STAGES[:6])
            if final == 6:  # lost: it went partway, then closed lost
                path = list(m.DEAL_STAGES[: rng.randint(1, 4)]) + ["closedlost"]
            history, ts = [], t
            for stage in path:
                if m.ms_to_date(ts) >= self.p.as_of:
                    break
                history.append({"value": stage, "timestamp": iso_ms(ts), "sourceType": "CRM_UI"})
                ts += rng.randint(2, 9) * DAY_MS + rng.randrange(3_600_000)
            stage_now, changed = history[-1]["value"], history[-1]["timestamp"]
            amount = rng.randint(20, 120) * 100
            props = {"dealname": f"{self._company_name()} wholesale order", "amount": str(amount),
                     "dealstage": stage_now, "pipeline": "default", "hubspot_owner_id": self.owner,
                     "createdate": iso_ms(t), "hs_lastmodifieddate": changed, "hs_object_id": deal_id}
            if stage_now in ("closedwon", "closedlost"):
                props["closedate"] = changed
            self.out.seeds.append(("hubspot", "deals", {
                "id": deal_id, "properties": props, "createdAt": iso_ms(t), "updatedAt": changed, "archived": False,
                "associations": {"contacts": [contact_id], "companies": [self.company_id]},
                "propertiesWithHistory": {"dealstage": list(reversed(history))}}))
            if stage_now == "closedwon":
                changed_ms = _parse_ms(changed)
                won_ms = min(changed_ms + rng.randint(10, 50) * 60_000,
                             m.day_start_ms(m.ms_to_date(changed_ms)) + DAY_MS - 10 * 60_000)
                prod = rng.choice(self.wholesale_products)
                self.wholesale_orders.append({"off": (m.ms_to_date(won_ms) - self.p.history_start).days,
                                              "items": [(prod, max(1, amount // prod.unit_amount))],
                                              "coupon": "WHOLESALE15", "paid_ms": won_ms})
        for k in range(rng.randint(1, 4)):
            call_id = str(4_000_000_000 + self.n * 8 + k)
            off = rng.randint(created_off, last_hist)
            t = self._start(off)
            self.out.seeds.append(("hubspot", "calls", {
                "id": call_id, "properties": {
                    "hs_timestamp": iso_ms(t), "hs_call_title": f"Call with {self.first} {self.last}",
                    "hs_call_body": rng.choice(("Discussed volume pricing.", "Follow-up on samples.",
                                                "Reorder for next season.", "Intro call, needs catalogue.")),
                    "hs_call_direction": rng.choice(("OUTBOUND", "INBOUND")), "hs_call_status": "COMPLETED",
                    "hs_call_duration": str(rng.randint(60, 1800) * 1000), "hubspot_owner_id": self.owner,
                    "hs_createdate": iso_ms(t), "hs_lastmodifieddate": iso_ms(t), "hs_object_id": call_id},
                "createdAt": iso_ms(t), "updatedAt": iso_ms(t), "archived": False,
                "associations": {"contacts": [contact_id]}}))

    # ------------------------------------------------------------------ stripe
    def _stripe(self, orders: list[dict[str, Any]]) -> None:
        orders = sorted(orders, key=lambda o: o["paid_ms"])
        if self._guest_checkout(orders):
            # Guest checkout: Stripe creates a new customer for every order, all with the buyer's email.
            for order in orders:
                self._stripe_customer([order])
        else:
            self._stripe_customer(orders)

    def _guest_checkout(self, orders: list[dict[str, Any]]) -> bool:
        """Whether this buyer checks out as a guest (drawn from a stream of its own: nothing else changes)."""
        if len(orders) < 2 or self.wholesale:
            return False
        share = GUEST_CHECKOUT_SHARE_TARGETED if self.segment != "regular" else GUEST_CHECKOUT_SHARE
        return m.person_rng(self.p.seed, self.index, "guest_checkout").random() < share

    def _stripe_customer(self, orders: list[dict[str, Any]]) -> None:
        rng = self.rng
        customer_id = "cus_" + m.rand_b62(rng, 14)
        email = self._system_email()
        created_ms = min(o["paid_ms"] for o in orders) - rng.randint(60_000, 600_000)
        prefix = m.rand_hex(rng, 8).upper()
        self.out.seeds.append(("stripe", "customers", {
            "id": customer_id, "object": "customer", "address": None, "balance": 0, "created": created_ms // 1000,
            "currency": "usd", "default_source": None, "delinquent": False, "description": None, "discount": None,
            "email": email, "invoice_prefix": prefix, "invoice_settings": {"custom_fields": None,
            "default_payment_method": None, "footer": None, "rendering_options": None}, "livemode": False,
            "metadata": {}, "name": f"{self.first} {self.last}", "next_invoice_sequence": len(orders) + 1,
            "phone": None, "preferred_locales": ["en"], "shipping": None, "tax_exempt": "none", "test_clock": None,
        }))
        self.ids.setdefault("stripe_customer_id", []).append(customer_id)
        for seq, order in enumerate(orders, start=1):
            invoice = self._invoice(order, customer_id, email, f"{prefix}-{seq:04d}")
            self.out.seeds.append(("stripe", "invoices", invoice))
            # Stripe keeps paid_at to the second
            self.invoices.append((m.ms_to_datetime(order["paid_ms"] // 1000 * 1000), invoice["total"]))
            paid_s = order["paid_ms"] // 1000
            event = {"id": "evt_" + m.rand_b62(rng, 24), "object": "event", "api_version": STRIPE_API_VERSION,
                     "created": paid_s, "data": {"object": invoice}, "livemode": False, "pending_webhooks": 1,
                     "request": {"id": None, "idempotency_key": None}, "type": "invoice.paid"}
            received = order["paid_ms"] + rng.randint(500, 4_000)
            # Stripe's webhooks reach the collector only since it exists (the history's first day); an
            # older purchase is only in Stripe's API, as when a shop installs the stack.
            if m.ms_to_date(received) >= self.p.history_start:
                self.out.events.append(("stripe", m.ms_to_date(received).isoformat(),
                                        _envelope(event["id"], received, orjson.dumps(event).decode())))

    def _invoice(self, order: dict[str, Any], customer_id: str, email: str, number: str) -> dict[str, Any]:
        rng = self.rng
        invoice_id = "in_" + m.rand_b62(rng, 24)
        paid = order["paid_ms"] // 1000
        created = paid - rng.randint(5, 60)
        subtotal = sum(p.unit_amount * q for p, q in order["items"])
        discount_total = _discount_cents(order["coupon"], subtotal)
        discount_id = "di_" + m.rand_b62(rng, 24) if order["coupon"] else None
        lines, remaining = [], discount_total
        for k, (prod, qty) in enumerate(order["items"]):
            amount = prod.unit_amount * qty
            # Spread the invoice discount over the lines, the rounding remainder on the last one.
            share = remaining if k == len(order["items"]) - 1 else discount_total * amount // subtotal
            remaining -= share
            lines.append({
                "id": "il_" + m.rand_b62(rng, 24), "object": "line_item", "amount": amount, "currency": "usd",
                "description": prod.name, "discount_amounts": [{"amount": share, "discount": discount_id}] if discount_id else [],
                "discountable": True, "discounts": [], "invoice": invoice_id, "livemode": False, "metadata": {},
                "parent": {"type": "invoice_item_details", "invoice_item_details": {
                    "invoice_item": "ii_" + m.rand_b62(rng, 24), "proration": False,
                    "proration_details": {"credited_items": None}, "subscription": None},
                    "subscription_item_details": None},
                "period": {"end": created, "start": created}, "pretax_credit_amounts": [],
                "pricing": {"type": "price_details", "price_details": {"price": prod.price_id, "product": prod.product_id},
                            "unit_amount_decimal": str(prod.unit_amount)},
                "quantity": qty, "subtotal": amount, "taxes": [],
            })
        total = subtotal - discount_total
        if discount_id:  # the invoice names its discount by id; the discount object carries the coupon
            coupon = next(c for c in m.COUPONS if c["id"] == order["coupon"])
            self.out.seeds.append(("stripe", "discounts", {
                # `created` is not a Stripe discount field, but the seeding contract keys history on it.
                "id": discount_id, "object": "discount", "checkout_session": None, "created": created,
                "coupon": _coupon_object(coupon, m.day_start_ms(self.p.history_start) // 1000 - 60 * 86_400),
                "customer": customer_id, "end": None, "invoice": invoice_id, "invoice_item": None,
                "promotion_code": None, "start": created, "subscription": None, "subscription_item": None}))
        return {
            "id": invoice_id, "object": "invoice", "account_country": "US", "account_name": "Example Shop",
            "amount_due": total, "amount_overpaid": 0, "amount_paid": total, "amount_remaining": 0,
            "amount_shipping": 0, "attempt_count": 1, "attempted": True, "auto_advance": False,
            "billing_reason": "manual", "collection_method": "charge_automatically", "created": created,
            "currency": "usd", "customer": customer_id, "customer_email": email,
            "customer_name": f"{self.first} {self.last}", "description": None,
            "discounts": [discount_id] if discount_id else [],
            "due_date": None, "effective_at": created, "ending_balance": 0, "hosted_invoice_url": None,
            "lines": {"object": "list", "data": lines, "has_more": False, "total_count": len(lines),
                      "url": f"/v1/invoices/{invoice_id}/lines"},
            "livemode": False, "metadata": {}, "number": number, "parent": None,
            "period_end": created, "period_start": created, "status": "paid",
            "status_transitions": {"finalized_at": created, "marked_uncollectible_at": None, "paid_at": paid,
                                   "voided_at": None},
            "subtotal": subtotal, "subtotal_excluding_tax": subtotal, "total": total,
            "total_discount_amounts": [{"amount": discount_total, "discount": discount_id}] if discount_id else [],
            "total_excluding_tax": total, "total_taxes": [], "webhooks_delivered_at": paid,
        }

    # ------------------------------------------------------------------ customer.io
    def _customerio(self, deliveries: list[dict[str, Any]]) -> None:
        rng = self.rng
        email = self._traits()["email"]  # Customer.io gets its attributes from the identify call
        created = self._start(self.id_off) // 1000
        self.out.seeds.append(("customerio", "customers", {
            "id": self.user_id, "email": email, "first_name": self.first, "last_name": self.last,
            "created_at": created}))
        self.ids["customerio_id"] = self.user_id
        for d in deliveries:
            cid, action_id, subject, sku = d["campaign"]
            today_envelopes = []
            href = f"https://{m.SHOP_DOMAIN}/products/{sku.lower()}?utm_source=customerio&utm_medium=email&utm_campaign=campaign_{cid}"
            for metric in ("delivered", "opened", "clicked"):
                at = d[f"{metric}_ms"]
                if at is None:
                    continue
                payload = reporting_webhook_payload(
                    metric, customer_id=self.user_id, email=email, delivery_id=d["delivery_id"],
                    campaign_id=cid, action_id=action_id, subject=subject, timestamp=at // 1000,
                    href=href if metric == "clicked" else None,
                    link_id=rng.randint(1, 40) if metric == "clicked" else None)
                received = at + rng.randint(500, 10_000)
                envelope = _envelope(payload["event_id"], received, orjson.dumps(payload).decode())
                if m.ms_to_date(received) < self.p.as_of:
                    self.out.events.append(("customerio", m.ms_to_date(received).isoformat(), envelope))
                else:
                    today_envelopes.append(envelope)
            if today_envelopes:  # today's email goes out through the sandbox's helper when it can
                self.out.live_emails.append({"envelopes": today_envelopes, "helper": {
                    "customer_id": self.user_id, "email": email, "campaign_id": cid, "action_id": action_id,
                    "subject": subject, "href": href, "timestamp": d["delivered_ms"] // 1000,
                    "events": [k for k in ("delivered", "opened", "clicked") if d[f"{k}_ms"] is not None]}})

    # ------------------------------------------------------------------ zendesk
    def _zendesk(self) -> None:
        rng = self.rng
        base = self.id_off if self.kind == "shopper" else self.first_off
        if base > self.today - 1:
            return
        user_id = 360_000_000_000 + self.n
        created = self._start(rng.randint(base, self.today - 1))
        email = self._system_email()
        updated = created + rng.randint(0, 3) * DAY_MS
        updated = min(updated, max(created, m.day_start_ms(self.p.as_of) - 1))
        self.out.seeds.append(("zendesk", "users", {
            "id": user_id, "url": f"https://example.zendesk.com/api/v2/users/{user_id}.json",
            "name": f"{self.first} {self.last}", "email": email,
            "external_id": self.user_id if self.user_id and rng.random() < 0.5 else None,
            "created_at": m.iso_s(created), "updated_at": m.iso_s(updated), "time_zone": "UTC",
            "locale": "en-US", "phone": None, "role": "end-user", "verified": True, "active": True,
            "suspended": False, "organization_id": None, "tags": [], "user_fields": {}}))
        self.ids["zendesk_user_id"] = user_id
        for k in range(rng.choices((1, 2, 3), (70, 22, 8))[0]):
            ticket_id = 1_000_000 + self.n * 4 + k
            t = created + k * rng.randint(1, 5) * DAY_MS
            if m.ms_to_date(t) >= self.p.as_of:
                break
            status = rng.choices(("new", "open", "pending", "solved", "closed"), (5, 15, 10, 40, 30))[0]
            subject = rng.choice(m.TICKET_SUBJECTS)
            t_upd = min(t + rng.randint(1, 72) * 3_600_000, max(t, m.day_start_ms(self.p.as_of) - 1))
            self.out.seeds.append(("zendesk", "tickets", {
                "id": ticket_id, "url": f"https://example.zendesk.com/api/v2/tickets/{ticket_id}.json",
                "external_id": None, "type": "question", "subject": subject, "raw_subject": subject,
                "description": f"{subject} Sent by {email.strip()}.", "priority": rng.choice(("low", "normal", "normal", "high")),
                "status": status, "recipient": None, "requester_id": user_id, "submitter_id": user_id,
                "assignee_id": None, "organization_id": None, "group_id": None, "collaborator_ids": [],
                "follower_ids": [], "email_cc_ids": [], "has_incidents": False, "is_public": True, "due_at": None,
                "tags": ["wholesale"] if self.wholesale else ["retail"], "custom_fields": [],
                "satisfaction_rating": None, "via": {"channel": rng.choice(("web", "email"))},
                "created_at": m.iso_s(t), "updated_at": m.iso_s(t_upd)}))

    # ------------------------------------------------------------------ helpers
    def _system_email(self) -> str:
        """The email as one more system holds it (its own case and spacing)."""
        email = m.email_variant(self.rng, self.canonical_email)
        self.emails.add(email)
        return email

    def _truth(self) -> dict[str, Any]:
        criteria = m.high_value_criteria(self.invoices, self.dob, self.page_days, self.p.moment)
        is_hv = all(criteria.values())
        return {
            "person_key": f"person_{self.n:07d}", "kind": self.kind, "segment": self.segment,
            "identifiers": {
                "anonymous_id": [d.anonymous_id for d in self.devices],
                "user_id": self.user_id if self.user_id and any(d.identified for d in self.devices) else None,
                "email": sorted(self.emails),
                "hubspot_contact_id": self.ids.get("hubspot_contact_id"),
                "stripe_customer_id": self.ids.get("stripe_customer_id", []),
                "zendesk_user_id": self.ids.get("zendesk_user_id"),
                "customerio_id": self.ids.get("customerio_id"),
            },
            "devices": [{"anonymous_id": d.anonymous_id, "source": d.kind} for d in self.devices],
            "customer_type": ("wholesale" if self.wholesale else "retail") if "hubspot_contact_id" in self.ids else None,
            "date_of_birth": self.dob.isoformat() if self.dob and "hubspot_contact_id" in self.ids else None,
            "as_of": self.p.moment.isoformat(),
            "high_value_criteria": criteria,
            "is_high_value": is_hv,
            "near_miss_criterion": m.near_miss_criterion(criteria),
        }


def iter_people(params: SimParams, start: int = 0, stop: int | None = None) -> Iterator[Output]:
    """Generate people `start`..`stop` (default: all), one `Output` at a time."""
    for index in range(start, params.customers if stop is None else stop):
        yield generate_person(params, index)


# ============================================================================ helpers

def _product_props(p: Product) -> dict[str, Any]:
    return {"product_id": p.product_id, "sku": p.sku, "name": p.name, "category": p.category,
            "price": p.unit_amount / 100, "currency": "USD"}


def _discount_cents(coupon_id: str | None, subtotal: int) -> int:
    if not coupon_id:
        return 0
    coupon = next(c for c in m.COUPONS if c["id"] == coupon_id)
    if coupon["percent_off"]:
        return round(subtotal * coupon["percent_off"] / 100)
    return min(subtotal, coupon["amount_off"])


def _parse_ms(iso: str) -> int:
    d = dt.datetime.strptime(iso, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=dt.timezone.utc)
    return int(d.timestamp() * 1000)


def _envelope(provider_id: str, received_ms: int, body: str) -> dict[str, Any]:
    """A webhook line as the collector stores it (its messageId is the provider's event id)."""
    return {"type": "webhook", "messageId": provider_id, "receivedAt": iso_ms(received_ms), "body": body}
