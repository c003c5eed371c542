"""The example company's fixed parts and the pure rules the generator and its tests share.

Nothing here does I/O. Randomness always comes from a `random.Random` the caller seeded, so
every id, name and timestamp is a function of (seed, person index) and of `--as-of`, never of
the wall clock.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import random

DAY_MS = 86_400_000
_B62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_EPOCH = dt.date(1970, 1, 1)

HIGH_VALUE_CRITERIA = ("orders", "age", "activity")
HIGH_VALUE_MIN_ORDERS = 5
HIGH_VALUE_MIN_ORDER_CENTS = 10_000  # each purchase must be *more* than 100.00 on its own
HIGH_VALUE_YEAR = dt.timedelta(days=365)
HIGH_VALUE_MIN_AGE, HIGH_VALUE_MAX_AGE = 25, 45
HIGH_VALUE_WEEKS = 4
# The oldest day the activity criterion can look at is as_of - 34 (a Monday as_of's 4th week back).
MIN_DAYS_FOR_HIGH_VALUE = 35

SHOP_DOMAIN = "shop.example.com"
FACEBOOK_ACCOUNT_ID = "1000"

# ----------------------------------------------------------------------------- rng helpers

def person_rng(seed: int, index: int, stream: str = "person") -> random.Random:
    """A private RNG for one person (or one global `stream`), independent of generation order."""
    digest = hashlib.blake2b(f"{seed}:{stream}:{index}".encode(), digest_size=16).digest()
    return random.Random(int.from_bytes(digest, "big"))


_UUID_CLEAR = ~((0xF000 << 64) | (0xC000 << 48))
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)


def rand_uuid(rng: random.Random) -> str:
    """A UUID4 string drawn from `rng` (what `str(uuid.UUID(int=..., version=4))` gives, faster)."""
    h = f"{(rng.getrandbits(128) & _UUID_CLEAR) | _UUID_SET:032x}"
    return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"


def rand_b62(rng: random.Random, n: int) -> str:
    """`n` base-62 characters, the alphabet of Stripe object ids."""
    return "".join(rng.choices(_B62, k=n))


def rand_int(rng: random.Random, lo: int, hi: int) -> int:
    """Like `rng.randint(lo, hi)` (inclusive), at a fraction of its cost, for the hot paths."""
    return lo + int(rng.random() * (hi - lo + 1))


def rand_hex(rng: random.Random, n: int) -> str:
    return f"{rng.getrandbits(4 * n):0{n}x}"


# ----------------------------------------------------------------------------- time helpers

def day_start_ms(day: dt.date) -> int:
    """Epoch milliseconds of 00:00 UTC on `day`."""
    return (day - _EPOCH).days * DAY_MS


def ms_to_date(ms: int) -> dt.date:
    return _EPOCH + dt.timedelta(days=ms // DAY_MS)


@functools.lru_cache(maxsize=4096)
def _day_iso(days: int) -> str:
    return (_EPOCH + dt.timedelta(days=days)).isoformat()


def iso_ms(ms: int) -> str:
    """ISO-8601 UTC with milliseconds and `Z`, as Segment and HubSpot write timestamps."""
    days, rem = divmod(ms, DAY_MS)
    s, milli = divmod(rem, 1000)
    h, s = divmod(s, 3600)
    m, s = divmod(s, 60)
    return f"{_day_iso(days)}T{h:02d}:{m:02d}:{s:02d}.{milli:03d}Z"


def iso_s(ms: int) -> str:
    """ISO-8601 UTC to the second with `Z`, as Zendesk writes timestamps."""
    return iso_ms(ms)[:19] + "Z"


def fb_time(ms: int) -> str:
    """Facebook Graph API time format: `2026-01-01T00:00:00+0000`."""
    return iso_ms(ms)[:19] + "+0000"


def age_on(dob: dt.date, day: dt.date) -> int:
    """Completed years of someone born on `dob`, on `day`."""
    return day.year - dob.year - ((day.month, day.day) < (dob.month, dob.day))


def dob_for_age(rng: random.Random, age: int, as_of: dt.date) -> dt.date:
    """A birth date such that `age_on(dob, as_of) == age`."""
    latest = _shift_years(as_of, -age)  # turned `age` on or before as_of
    earliest = _shift_years(as_of, -(age + 1)) + dt.timedelta(days=1)
    dob = earliest + dt.timedelta(days=rng.randrange((latest - earliest).days + 1))
    assert age_on(dob, as_of) == age
    return dob


def _shift_years(day: dt.date, years: int) -> dt.date:
    try:
        return day.replace(year=day.year + years)
    except ValueError:  # 29 February in a non-leap year
        return day.replace(year=day.year + years, day=28)


def activity_weeks(as_of: dt.date) -> list[tuple[dt.date, dt.date]]:
    """The `HIGH_VALUE_WEEKS` complete Monday-Sunday weeks before `as_of`, newest first."""
    last_sunday = as_of - dt.timedelta(days=as_of.weekday() + 1)
    return [
        (last_sunday - dt.timedelta(days=6 + 7 * k), last_sunday - dt.timedelta(days=7 * k))
        for k in range(HIGH_VALUE_WEEKS)
    ]


# ----------------------------------------------------------------------------- high value

def as_of_moment(day: dt.date) -> dt.datetime:
    """The point in time a simulation's ground truth holds at when only its date is given: 00:00 UTC."""
    return dt.datetime.combine(day, dt.time(), dt.timezone.utc)


def high_value_criteria(
    invoices: list[tuple[dt.datetime, int]], dob: dt.date | None, page_view_days: set[dt.date] | list[dt.date],
    as_of: dt.datetime,
) -> dict[str, bool]:
    """Which of the three high-value criteria (contract) a person meets at the moment `as_of` (UTC).

    invoices: (paid at, total in cents) of their paid Stripe invoices; dob: HubSpot `date_of_birth` or
    None; page_view_days: UTC dates of their page views.
    orders: >= 5 invoices paid in (as_of - 365 days, as_of] each of whose own total is over 100.00;
    age: 25..45 inclusive on as_of's UTC date; activity: a page view in each of the 4 complete
    Monday-Sunday weeks before the week that contains as_of.
    """
    day = as_of.astimezone(dt.timezone.utc).date()
    start = as_of - HIGH_VALUE_YEAR
    over = [total for paid, total in invoices if start < paid <= as_of and total > HIGH_VALUE_MIN_ORDER_CENTS]
    orders = len(over) >= HIGH_VALUE_MIN_ORDERS
    age = dob is not None and HIGH_VALUE_MIN_AGE <= age_on(dob, day) <= HIGH_VALUE_MAX_AGE
    days = set(page_view_days)
    activity = all(
        any(lo + dt.timedelta(days=k) in days for k in range(7)) for lo, _hi in activity_weeks(day)
    )
    return {"orders": orders, "age": age, "activity": activity}


def ms_to_datetime(ms: int) -> dt.datetime:
    """Epoch milliseconds as an aware UTC datetime."""
    return dt.datetime.fromtimestamp(ms / 1000, dt.timezone.utc)


def datetime_to_ms(moment: dt.datetime) -> int:
    """An aware datetime as epoch milliseconds."""
    return round(moment.timestamp() * 1000)


def birthday_dob(age: int, day: dt.date) -> dt.date:
    """A birth date whose `age`-th birthday is `day` (when `day` is 29 February and that birth year had
    none: 28 February, who turned `age` the day before)."""
    return _shift_years(day, -age)


def near_miss_criterion(criteria: dict[str, bool]) -> str | None:
    """The one criterion a person fails when they meet all the others, else None."""
    failed = [name for name in HIGH_VALUE_CRITERIA if not criteria[name]]
    return failed[0] if len(failed) == 1 else None


# ----------------------------------------------------------------------------- emails

def email_variant(rng: random.Random, canonical: str, style: str | None = None) -> str:
    """The same mailbox written the way one system happens to hold it (case and spaces vary)."""
    style = style or rng.choice(("lower", "lower", "title", "upper_domain", "upper", "spaces"))
    local, _, domain = canonical.partition("@")
    if style == "lower":
        return canonical
    if style == "title":
        return ".".join(p.capitalize() for p in local.split(".")) + "@" + domain
    if style == "upper_domain":
        return local + "@" + domain.upper()
    if style == "upper":
        return canonical.upper()
    return " " * rng.randint(1, 2) + canonical + " " * rng.randint(0, 2)  # "spaces"


def normalize_email(email: str) -> str:
    """The comparison key identity resolution uses: trimmed and lower-cased."""
    return email.strip().lower()


# ----------------------------------------------------------------------------- fixed company data

@dataclasses.dataclass(frozen=True)
class Product:
    sku: str
    name: str
    category: str
    unit_amount: int  # cents, USD
    wholesale: bool = False

    @property
    def product_id(self) -> str:
        return f"prod_{self.sku}"

    @property
    def price_id(self) -> str:
        return f"price_{self.sku}_usd"


_CATEGORIES = {
    "TEE": ("T-Shirt", [1800, 2400, 2900]),
    "HOD": ("Hoodie", [4900, 5900, 6900]),
    "CAP": ("Cap", [1500, 2200]),
    "SCK": ("Socks", [900, 1200]),
    "BAG": ("Tote Bag", [2500, 3500]),
    "MUG": ("Mug", [2000, 1400]),
    "BTL": ("Water Bottle", [2800, 3200]),
    "JKT": ("Jacket", [8900, 12900]),
}
_ADJECTIVES = ["Classic", "Organic", "Vintage", "Everyday", "Trail", "Studio", "Harbor", "Summit"]

# MUG001 costs exactly 20.00: five of them make an "orders" near-miss at exactly 100.00; five TEE001
# (18.00) make a purchase of 90.00.
EXACT_TWENTY_SKU = "MUG001"
NINETY_SKU = "TEE001"


@functools.lru_cache(maxsize=1)
def catalog() -> tuple[Product, ...]:
    """The shop's SKUs (fixed: the same for every seed so cost files and prices line up)."""
    products = []
    for cat, (noun, prices) in _CATEGORIES.items():
        for k, amount in enumerate(prices, start=1):
            adj = _ADJECTIVES[(len(products) * 3) % len(_ADJECTIVES)]
            products.append(Product(f"{cat}{k:03d}", f"{adj} {noun}", noun, amount))
        products.append(Product(f"{cat}9{len(prices):02d}", f"Wholesale {noun} Case (24)", noun,
                                prices[0] * 24 * 6 // 10, wholesale=True))
    return tuple(products)


COUPONS = (
    {"id": "WELCOME10", "percent_off": 10.0, "amount_off": None, "name": "Welcome 10%"},
    {"id": "SPRING5", "percent_off": None, "amount_off": 500, "name": "$5 off"},
    {"id": "WHOLESALE15", "percent_off": 15.0, "amount_off": None, "name": "Wholesale 15%"},
)

FACEBOOK_CAMPAIGNS = (
    ("23850000000000011", "autumn_sale", "OUTCOME_SALES"),
    ("23850000000000012", "new_arrivals", "OUTCOME_TRAFFIC"),
    ("23850000000000013", "retargeting_cart", "OUTCOME_SALES"),
    ("23850000000000014", "brand_awareness", "OUTCOME_AWARENESS"),
    ("23850000000000015", "wholesale_leads", "OUTCOME_LEADS"),
)

OWNERS = (
    ("61000001", "Maria", "Lopez"), ("61000002", "James", "Okafor"), ("61000003", "Anna", "Schmidt"),
    ("61000004", "Kenji", "Tanaka"), ("61000005", "Priya", "Raman"), ("61000006", "Tom", "Walsh"),
)

EMAIL_CAMPAIGNS = (  # (Customer.io campaign_id, action_id, subject, featured sku)
    (11, 101, "New arrivals are here", "TEE002"),
    (12, 102, "Your weekend deal: $5 off", "HOD001"),
    (13, 103, "Back in stock: the Trail Jacket", "JKT001"),
    (14, 104, "Stay hydrated this season", "BTL001"),
    (15, 105, "Last chance: autumn sale ends soon", "BAG002"),
)

DEAL_STAGES = ("appointmentscheduled", "qualifiedtobuy", "presentationscheduled",
               "decisionmakerboughtin", "contractsent", "closedwon", "closedlost")

FIRST_NAMES = ("Olivia", "Liam", "Emma", "Noah", "Ava", "Elijah", "Sophia", "Lucas", "Mia", "Mateo",
               "Amelia", "Levi", "Harper", "Ethan", "Nora", "Aiden", "Zoe", "Kai", "Leila", "Omar",
               "Hana", "Jonas", "Ines", "Ravi", "Chloe", "Diego", "Freya", "Yusuf", "Greta", "Tariq")
LAST_NAMES = ("Smith", "Garcia", "Müller", "Kim", "Nguyen", "Johnson", "Rossi", "Silva", "Khan",
              "Brown", "Dubois", "Kowalski", "Andersen", "Patel", "Cohen", "Moreau", "Sato", "Lee",
              "Novak", "Haddad", "Berg", "Costa", "Ivanova", "Okafor", "Fischer", "Walsh")
EMAIL_DOMAINS = ("gmail.com", "outlook.com", "yahoo.com", "icloud.com", "proton.me", "example.org")
COMPANY_SUFFIXES = ("Supply Co.", "Outfitters", "Retail Group", "Trading", "& Sons", "Boutique")

TICKET_SUBJECTS = ("Where is my order?", "Wrong size delivered", "Refund request", "Coupon did not apply",
                   "Question about wholesale pricing", "Damaged item", "Change shipping address")

WEB_USER_AGENTS = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_6) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 18_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.0 Mobile/15E148 Safari/604.1",
    "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Mobile Safari/537.36",
    "Mozilla/5.0 (X11; Linux x86_64; rv:131.0) Gecko/20100101 Firefox/131.0",
)
IOS_MODELS = ("iPhone15,2", "iPhone16,1", "iPhone14,5", "iPad13,18")
