"""The sandbox's Stripe emulation, driven by the official `stripe` library against a real
`growth-stack sandbox` subprocess on loopback, with a real webhook receiver."""

from __future__ import annotations

import base64
import concurrent.futures
import http.server
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import stripe

from growth_stack_dagster.sandbox import stripe_forms
from tests.servers import free_port, run_server

KEY = "sk_test_sandbox"
SECRET = "whsec_test_stripe_module"
AUTH = {"Authorization": f"Bearer {KEY}"}


# --------------------------------------------------------------------------- fixtures
class Receiver:
    """A webhook endpoint on loopback that records every delivery."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[str, dict[str, str], bytes]] = []
        received = self.deliveries

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                received.append((self.path, dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def stripe_events(self) -> list[tuple[dict[str, str], bytes]]:
        return [(h, b) for path, h, b in self.deliveries if path == "/hooks/stripe"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class Sandbox:
    def __init__(self, url: str, receiver: Receiver):
        self.url, self.receiver = url, receiver

    def client(self, retries: int = 0) -> stripe.StripeClient:
        return stripe.StripeClient(KEY, base_addresses={"api": f"{self.url}/stripe"}, max_network_retries=retries)

    def fault(self, **spec: Any) -> None:
        requests.post(f"{self.url}/_admin/faults", json=spec, timeout=10).raise_for_status()

    def faults(self) -> list[dict[str, Any]]:
        return requests.get(f"{self.url}/_admin/faults", timeout=10).json()

    def seed(self, collection: str, objects: list[dict[str, Any]]) -> int:
        r = requests.post(f"{self.url}/_admin/seed/stripe/{collection}", json=objects, timeout=60)
        r.raise_for_status()
        return r.json()["seeded"]

    def flush(self) -> None:
        requests.post(f"{self.url}/_admin/webhooks/flush", timeout=60).raise_for_status()


@pytest.fixture(scope="module")
def sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Sandbox]:
    """One sandbox for this module (rate limits off, webhooks to a local receiver)."""
    home = tmp_path_factory.mktemp("stripe_home")
    receiver = Receiver()
    env = {"GROWTH_STACK_HOME": str(home), "GROWTH_STACK_SANDBOX_WEBHOOK_URL": receiver.url,
           "GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE": "0", "STRIPE_WEBHOOK_SECRET": SECRET}
    try:
        with run_server("sandbox", "/_admin/health", env, log_path=Path(home) / "sandbox.log") as (url, _):
            yield Sandbox(url, receiver)
    finally:
        receiver.close()


@pytest.fixture
def sb(sandbox: Sandbox) -> Iterator[Sandbox]:
    yield sandbox
    requests.delete(f"{sandbox.url}/_admin/faults", timeout=10)


def _catalog(client: stripe.StripeClient, sku: str, unit_amount: int) -> tuple[Any, Any]:
    product = client.v1.products.create({"id": f"prod_{sku}", "name": f"Item {sku}", "metadata": {"sku": sku}})
    price = client.v1.prices.create({"product": product.id, "unit_amount": unit_amount, "currency": "usd"})
    return product, price


def _unique() -> str:
    return str(time.time_ns())[-10:]


# --------------------------------------------------------------------------- billing flow
def test_invoice_with_items_and_coupon_is_finalized_paid_and_read_back(sb: Sandbox) -> None:
    client = sb.client()
    sku = "A" + _unique()
    customer = client.v1.customers.create(
        {"email": "Buyer@Example.com ", "name": "Buyer", "metadata": {"app_user_id": "u_1"}})
    product, price = _catalog(client, sku, 1250)
    coupon = client.v1.coupons.create({"percent_off": 20, "duration": "once", "name": "Spring"})
    assert (coupon.percent_off, coupon.duration, coupon.valid) == (20, "once", True)

    invoice = client.v1.invoices.create({"customer": customer.id, "discounts": [{"coupon": coupon.id}]})
    assert invoice.status == "draft" and invoice.lines.data == []
    item = client.v1.invoice_items.create(
        {"customer": customer.id, "invoice": invoice.id, "pricing": {"price": price.id}, "quantity": 3})
    assert (item.amount, item.quantity, item.invoice) == (3750, 3, invoice.id)

    finalized = client.v1.invoices.finalize_invoice(invoice.id)
    assert finalized.status == "open" and finalized.number and finalized.status_transitions.finalized_at
    paid = client.v1.invoices.pay(invoice.id)
    assert paid.status == "paid"
    assert paid.status_transitions.paid_at >= paid.created
    assert (paid.subtotal, paid.total, paid.amount_paid, paid.amount_remaining) == (3750, 3000, 3000, 0)

    got = client.v1.invoices.retrieve(invoice.id, {"expand": ["customer", "discounts", "lines.data.price.product"]})
    assert got.customer.email == "Buyer@Example.com "
    assert [d.coupon.id for d in got.discounts] == [coupon.id]
    assert [(t.amount, t.discount) for t in got.total_discount_amounts] == [(750, got.discounts[0].id)]
    line = got.lines.data[0]
    assert (line.amount, line.quantity, line.currency) == (3750, 3, "usd")
    assert line.pricing.price_details.price == price.id and line.pricing.price_details.product == product.id
    assert line.price.product.metadata["sku"] == sku
    assert [(d.amount, d.discount) for d in line.discount_amounts] == [(750, got.discounts[0].id)]

    lines = client.v1.invoices.line_items.list(invoice.id)
    assert [ln.id for ln in lines.data] == [line.id]

    charges = client.v1.charges.list({"customer": customer.id})
    assert len(charges.data) == 1
    charge = charges.data[0]
    assert (charge.status, charge.paid, charge.amount, charge.customer) == ("succeeded", True, 3000, customer.id)
    intent = client.v1.payment_intents.retrieve(charge.payment_intent)
    assert intent.status == "succeeded" and intent.latest_charge == charge.id

    paid_ids = [i.id for i in client.v1.invoices.list({"customer": customer.id, "status": "paid"}).data]
    assert paid_ids == [invoice.id]
    assert client.v1.invoices.list({"customer": customer.id, "status": "draft"}).data == []
    expanded = client.v1.invoices.list({"customer": customer.id, "expand": ["data.customer"]})
    assert expanded.data[0].customer.email == "Buyer@Example.com "
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.invoices.list({"expand": ["customer"]})  # lists expand `data.<field>`
    assert err.value.param == "expand"
    assert client.v1.coupons.retrieve(coupon.id).times_redeemed == 1


def test_customer_coupon_discounts_invoices_and_pending_items_are_included(sb: Sandbox) -> None:
    client = sb.client()
    _, price = _catalog(client, "B" + _unique(), 999)
    coupon = client.v1.coupons.create({"amount_off": 500, "currency": "usd", "duration": "forever"})
    # `coupon` on customers is the pre-2025-03-31 way to give a customer a standing discount.
    legacy: Any = {"email": "c@example.com", "coupon": coupon.id}
    customer = client.v1.customers.create(legacy)
    assert customer.discount.coupon.id == coupon.id
    client.v1.invoice_items.create({"customer": customer.id, "pricing": {"price": price.id}, "quantity": 2})
    pending = client.v1.invoice_items.list({"customer": customer.id, "pending": True})
    assert len(pending.data) == 1

    invoice = client.v1.invoices.create({"customer": customer.id, "pending_invoice_items_behavior": "include"})
    assert invoice.discounts == [customer.discount.id]
    assert (invoice.subtotal, invoice.total) == (1998, 1498)
    assert [(t.amount, t.discount) for t in invoice.total_discount_amounts] == [(500, customer.discount.id)]
    assert client.v1.invoice_items.list({"customer": customer.id, "pending": True}).data == []

    paid = client.v1.invoices.pay(invoice.id)  # paying a draft finalizes it first
    assert paid.status == "paid" and paid.amount_paid == 1498


def test_add_lines_and_lines_are_paged(sb: Sandbox) -> None:
    client = sb.client()
    _, price = _catalog(client, "C" + _unique(), 100)
    customer = client.v1.customers.create({"name": "Many lines"})
    invoice = client.v1.invoices.create({"customer": customer.id})
    invoice = client.v1.invoices.add_lines(
        invoice.id, {"lines": [{"pricing": {"price": price.id}, "quantity": q} for q in range(1, 13)]})
    assert invoice.total == sum(100 * q for q in range(1, 13))
    assert len(invoice.lines.data) == 10 and invoice.lines.has_more  # Stripe embeds the first 10 lines
    page = client.v1.invoices.line_items.list(invoice.id, {"limit": 5})
    every = [ln.quantity for ln in page.auto_paging_iter()]
    assert every == list(range(1, 13))


# --------------------------------------------------------------------------- lists
def test_auto_pagination_created_filters_and_cursor_errors(sb: Sandbox) -> None:
    client = sb.client()
    tag = _unique()
    base = 1_600_000_000
    seeded = [{"id": f"cus_seed{tag}{i:03d}", "object": "customer", "created": base + i, "email": f"s{i}@x.io",
               "metadata": {"tag": tag}, "livemode": False} for i in range(230)]
    assert sb.seed("customers", seeded) == 230

    window = {"gte": base, "lte": base + 229}
    first = client.v1.customers.list({"limit": 100, "created": window})
    assert first.object == "list" and first.url == "/v1/customers" and first.has_more
    ids = [c.id for c in first.auto_paging_iter()]
    assert ids == [c["id"] for c in reversed(seeded)]  # newest first, nothing missed or repeated

    assert [c.id for c in client.v1.customers.list({"created": {"gt": base + 226}}).data
            if c.id.startswith(f"cus_seed{tag}")] == [seeded[229]["id"], seeded[228]["id"], seeded[227]["id"]]
    assert [c.id for c in client.v1.customers.list({"created": {"gte": base, "lt": base + 2}}).data] == \
        [seeded[1]["id"], seeded[0]["id"]]
    exact = requests.get(f"{sb.url}/stripe/v1/customers", params={"created": base + 5}, headers=AUTH).json()
    assert [c["id"] for c in exact["data"]] == [seeded[5]["id"]]

    before = client.v1.customers.list({"ending_before": seeded[100]["id"], "limit": 3, "created": window})
    assert [c.id for c in before.data] == [seeded[103]["id"], seeded[102]["id"], seeded[101]["id"]]
    assert client.v1.customers.list({"email": "s7@x.io"}).data[0].id == seeded[7]["id"]

    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.list({"limit": 101})
    assert err.value.param == "limit"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.list({"starting_after": "cus_missing"})
    assert err.value.http_status == 404 and err.value.code == "resource_missing"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.list({"created": {"after": 1}})  # type: ignore[typeddict-unknown-key]
    assert err.value.code == "parameter_unknown" and err.value.param == "created[after]"


def test_seeded_invoices_serve_lines_filters_and_send_no_webhooks(sb: Sandbox) -> None:
    client = sb.client()
    sb.flush()
    delivered_before = len(sb.receiver.stripe_events())
    tag = _unique()
    cus = f"cus_inv{tag}"
    lines = [{"id": f"il_{tag}_{j}", "object": "line_item", "amount": 200, "currency": "usd", "quantity": 1,
              "pricing": {"type": "price_details", "price_details": {"price": "price_x", "product": "prod_SKU9"}},
              "discount_amounts": [], "discounts": []} for j in range(25)]
    invoices = [{"id": f"in_{tag}_{k}", "object": "invoice", "customer": cus, "created": 1_650_000_000 + k,
                 "status": "paid", "currency": "usd", "subtotal": 5000, "total": 5000, "amount_paid": 5000,
                 "discounts": [], "total_discount_amounts": [], "status_transitions": {"paid_at": 1_650_000_100 + k},
                 "lines": {"object": "list", "data": lines if k == 0 else lines[:2], "has_more": False,
                           "url": f"/v1/invoices/in_{tag}_{k}/lines"}} for k in range(3)]
    assert sb.seed("invoices", invoices) == 3
    assert sb.seed("invoices", invoices[:1]) == 1  # the same id again replaces, not duplicates

    listed = client.v1.invoices.list({"customer": cus})
    assert [i.id for i in listed.data] == [f"in_{tag}_2", f"in_{tag}_1", f"in_{tag}_0"]
    big = client.v1.invoices.retrieve(f"in_{tag}_0")
    assert len(big.lines.data) == 10 and big.lines.has_more and big.status_transitions.paid_at == 1_650_000_100
    assert [ln.id for ln in client.v1.invoices.line_items.list(big.id, {"limit": 100}).data] == \
        [ln["id"] for ln in lines]
    assert client.v1.invoices.list({"customer": cus, "created": {"gte": 1_650_000_001}, "limit": 1}).has_more

    sb.flush()
    assert len(sb.receiver.stripe_events()) == delivered_before


def test_api_invoices_for_a_seeded_customer_with_a_seeded_discount(sb: Sandbox) -> None:
    client = sb.client()
    tag = _unique()
    coupon = {"id": f"VIP{tag}", "object": "coupon", "percent_off": 50, "duration": "forever", "created": 1_600_000_000,
              "valid": True, "times_redeemed": 1}
    discount = {"id": f"di_{tag}", "object": "discount", "customer": f"cus_vip{tag}", "start": 1_600_000_000,
                "end": None, "source": {"coupon": coupon["id"], "type": "coupon"}}
    assert sb.seed("coupons", [coupon]) == 1
    sb.seed("customers", [{"id": f"cus_vip{tag}", "object": "customer", "created": 1_600_000_000,
                           "email": "vip@example.com", "discount": discount}])
    _, price = _catalog(client, "F" + _unique(), 1000)
    invoice = client.v1.invoices.create({"customer": f"cus_vip{tag}"})
    assert invoice.discounts == [discount["id"]]
    client.v1.invoice_items.create({"customer": f"cus_vip{tag}", "invoice": invoice.id, "pricing": {"price": price.id}})
    paid = client.v1.invoices.pay(invoice.id)
    assert (paid.status, paid.total, paid.amount_paid) == ("paid", 500, 500) and paid.number
    assert client.v1.invoices.retrieve(invoice.id, {"expand": ["customer"]}).customer.email == "vip@example.com"


def test_delete_customer_shows_deleted_and_records_event(sb: Sandbox) -> None:
    client = sb.client()
    customer = client.v1.customers.create({"email": "gone@example.com"})
    updated = client.v1.customers.update(customer.id, {"name": "Gone", "metadata": {"k": "v"}})
    assert updated.name == "Gone" and updated.metadata["k"] == "v"
    deleted = client.v1.customers.delete(customer.id)
    assert deleted.to_dict() == {"id": customer.id, "object": "customer", "deleted": True}
    assert client.v1.customers.retrieve(customer.id).deleted is True
    recent = client.v1.customers.list({"limit": 100, "created": {"gte": customer.created}}).data
    assert customer.id not in [c.id for c in recent]
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.customers.delete(customer.id)

    events = client.v1.events.list({"type": "customer.deleted", "limit": 100})
    mine = [e for e in events.data if e.data.object.id == customer.id]
    assert len(mine) == 1 and mine[0].data.object.email == "gone@example.com"
    typed = client.v1.events.list({"types": ["customer.created", "customer.updated"], "limit": 100})
    assert {e.type for e in typed.data if e.data.object.id == customer.id} == {"customer.created", "customer.updated"}
    upd = next(e for e in typed.data if e.type == "customer.updated" and e.data.object.id == customer.id)
    assert upd.data.previous_attributes.name is None
    assert client.v1.events.retrieve(upd.id).id == upd.id
    since = client.v1.events.list({"created": {"gte": customer.created}, "type": "customer.*", "limit": 100})
    assert {e.type for e in since.data if e.data.object.id == customer.id} == \
        {"customer.created", "customer.updated", "customer.deleted"}


# --------------------------------------------------------------------------- errors
def test_errors_have_stripe_shape(sb: Sandbox) -> None:
    client = sb.client()
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.customers.create({"emial": "typo@example.com"})  # type: ignore[typeddict-unknown-key]
    assert (err.value.http_status, err.value.code, err.value.param) == (400, "parameter_unknown", "emial")
    assert err.value.user_message == "Received unknown parameter: emial"
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.prices.create({"unit_amount": 100, "product": "prod_x"})  # type: ignore[typeddict-item]
    assert (err.value.code, err.value.param) == ("parameter_missing", "currency")
    with pytest.raises(stripe.InvalidRequestError) as err:
        client.v1.invoices.retrieve("in_doesnotexist")
    assert (err.value.http_status, err.value.code) == (404, "resource_missing")
    assert err.value.user_message == "No such invoice: 'in_doesnotexist'"

    bad = stripe.StripeClient("sk_test_wrongwrongwrong9876", base_addresses={"api": f"{sb.url}/stripe"})
    with pytest.raises(stripe.AuthenticationError) as auth:
        bad.v1.customers.list()
    assert auth.value.http_status == 401
    assert "wrongwrong" not in str(auth.value) and auth.value.user_message.endswith("9876")
    r = requests.get(f"{sb.url}/stripe/v1/customers", timeout=10)
    assert r.status_code == 401 and r.json()["error"]["type"] == "invalid_request_error"
    basic = base64.b64encode(f"{KEY}:".encode()).decode()
    r = requests.get(f"{sb.url}/stripe/v1/customers", headers={"Authorization": f"Basic {basic}"}, timeout=10)
    assert r.status_code == 200 and r.json()["object"] == "list"
    r = requests.get(f"{sb.url}/stripe/v1/nothing_here", headers=AUTH, timeout=10)
    assert r.status_code == 404 and "Unrecognized request URL" in r.json()["error"]["message"]


def test_idempotency_key_replays_and_rejects_other_parameters(sb: Sandbox) -> None:
    key = "idem-" + _unique()
    headers = {**AUTH, "Idempotency-Key": key}
    first = requests.post(f"{sb.url}/stripe/v1/customers", data={"email": "i@x.io"}, headers=headers, timeout=10)
    again = requests.post(f"{sb.url}/stripe/v1/customers", data={"email": "i@x.io"}, headers=headers, timeout=10)
    assert first.status_code == again.status_code == 200
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["Idempotent-Replayed"] == "true" and "Idempotent-Replayed" not in first.headers
    assert first.headers["Request-Id"].startswith("req_") and first.headers["Idempotency-Key"] == key
    assert again.headers["Original-Request"] == first.headers["Request-Id"]
    with pytest.raises(stripe.IdempotencyError):
        sb.client().v1.customers.create({"email": "other@x.io"}, {"idempotency_key": key})
    # a request that failed validation is not recorded, so the key can be reused once corrected
    key2 = "idem-" + _unique()
    with pytest.raises(stripe.InvalidRequestError):
        bogus: Any = {"bogus": "1"}
        sb.client().v1.customers.create(bogus, {"idempotency_key": key2})
    assert sb.client().v1.customers.create({"email": "ok@x.io"}, {"idempotency_key": key2}).email == "ok@x.io"


def test_injected_rate_limit_is_not_retried_by_the_client(sb: Sandbox) -> None:
    sb.fault(prefix="/stripe/v1/customers", kind="rate_limit", count=1)
    r = requests.get(f"{sb.url}/stripe/v1/customers", headers=AUTH, timeout=10)
    assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limit"
    assert "Retry-After" not in r.headers and "Stripe-Should-Retry" not in r.headers

    for retries in (0, 2):
        sb.fault(prefix="/stripe/v1/customers", kind="rate_limit", count=1)
        with pytest.raises(stripe.RateLimitError) as err:
            sb.client(retries=retries).v1.customers.list()
        assert err.value.http_status == 429
        # The client does not retry Stripe's rate limits even when retries are on: the rule fired once.
        assert sb.client().v1.customers.list().object == "list"
    assert sum(f["fired"] for f in sb.faults()) == 3


def test_injected_server_error_is_retried_when_the_client_retries(sb: Sandbox) -> None:
    sb.fault(prefix="/stripe/v1/coupons", kind="error", status=500, count=1)
    with pytest.raises(stripe.APIError) as err:
        sb.client(retries=0).v1.coupons.list()
    assert err.value.http_status == 500 and err.value.json_body["error"]["type"] == "api_error"

    sb.fault(prefix="/stripe/v1/coupons", kind="error", status=503, count=1)
    coupon = sb.client(retries=2).v1.coupons.create({"percent_off": 5})
    assert coupon.percent_off == 5
    assert [f["fired"] for f in sb.faults()] == [1, 1]


def test_reject_fault_declines_the_card(sb: Sandbox) -> None:
    client = sb.client()
    _, price = _catalog(client, "D" + _unique(), 700)
    customer = client.v1.customers.create({"email": "declined@example.com"})
    invoice = client.v1.invoices.create({"customer": customer.id})
    client.v1.invoice_items.create({"customer": customer.id, "invoice": invoice.id, "pricing": {"price": price.id}})
    client.v1.invoices.finalize_invoice(invoice.id)
    sb.fault(prefix="/stripe/v1/invoices", kind="reject", match=customer.id, count=1)
    with pytest.raises(stripe.CardError) as err:
        client.v1.invoices.pay(invoice.id)
    assert err.value.http_status == 402 and err.value.code == "card_declined"
    assert client.v1.invoices.retrieve(invoice.id).status == "open"
    failed = client.v1.charges.list({"customer": customer.id}).data
    assert [(c.status, c.failure_code) for c in failed] == [("failed", "card_declined")]
    assert client.v1.invoices.pay(invoice.id).status == "paid"  # the rule fired once; the retry goes through


# --------------------------------------------------------------------------- webhooks
def test_webhooks_are_signed_like_stripe(sb: Sandbox) -> None:
    client = sb.client()
    _, price = _catalog(client, "E" + _unique(), 4200)
    customer = client.v1.customers.create({"email": "hook@example.com"})
    invoice = client.v1.invoices.create({"customer": customer.id})
    client.v1.invoice_items.create({"customer": customer.id, "invoice": invoice.id, "pricing": {"price": price.id}})
    client.v1.invoices.pay(invoice.id)
    client.v1.customers.delete(customer.id)
    sb.flush()

    events = []
    for headers, body in sb.receiver.stripe_events():
        event = stripe.Webhook.construct_event(body, headers["Stripe-Signature"], SECRET)
        assert event.object == "event" and event.id.startswith("evt_") and event.livemode is False
        assert event.api_version and event.request.id.startswith("req_")
        obj = event.data.object.to_dict()
        if obj.get("id") in (customer.id, invoice.id) or obj.get("customer") == customer.id:
            events.append(event)
    types = [e.type for e in events]
    for expected in ("customer.created", "invoice.created", "invoiceitem.created", "invoice.finalized",
                     "charge.succeeded", "payment_intent.succeeded", "invoice.paid", "customer.deleted"):
        assert expected in types
    assert types.index("charge.succeeded") < types.index("invoice.paid")
    paid = next(e for e in events if e.type == "invoice.paid")
    assert paid.data.object.status == "paid" and paid.data.object.amount_paid == 4200
    assert paid.data.object.lines.data[0].pricing.price_details.price == price.id
    stored = client.v1.events.retrieve(paid.id)
    assert stored.data.object.id == invoice.id

    headers, body = sb.receiver.stripe_events()[-1]
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body, headers["Stripe-Signature"], "whsec_not_the_secret")


# --------------------------------------------------------------------------- real rate limit, shared fixture
@pytest.fixture
def slow_stripe_rate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Scale Stripe's 25/s test-mode limit down to 2.5/s (burst 2.5) for the next sandbox."""
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE", "0.1")
    monkeypatch.setenv("GROWTH_STACK_SANDBOX_WEBHOOK_URL", "")


def test_published_rate_limit_answers_429_then_recovers(slow_stripe_rate: None, sandbox_url: str) -> None:
    stripe.api_base = f"{sandbox_url}/stripe"
    stripe.api_key = KEY
    try:
        def call(_: int) -> int:
            try:
                stripe.Customer.list(limit=1)
                return 200
            except stripe.RateLimitError as exc:
                assert exc.json_body["error"]["code"] == "rate_limit"
                return exc.http_status or 0

        # Rounds of ten requests at once against a 2.5/s bucket until one is limited: the burst passes,
        # and however slowly a loaded machine sends, a round comes faster than 2.5/s (deadline, no sleep).
        statuses: list[int] = []
        deadline = time.monotonic() + 60
        with concurrent.futures.ThreadPoolExecutor(10) as pool:
            while 429 not in statuses and time.monotonic() < deadline:
                statuses += pool.map(call, range(10))
        assert statuses.count(200) >= 2 and 429 in statuses and set(statuses) <= {200, 429}
        # The bucket refills: calls pass again (polled until a deadline, not after a fixed sleep).
        deadline = time.monotonic() + 30
        while (status := call(0)) == 429:
            assert time.monotonic() < deadline, "the Stripe rate limit never let a request through again"
            time.sleep(0.1)
        assert status == 200
    finally:
        stripe.api_base = stripe.DEFAULT_API_BASE
        stripe.api_key = None


# --------------------------------------------------------------------------- form decoding (pure)
def test_form_decoding_follows_stripe_bracket_notation() -> None:
    got = stripe_forms.decode(
        "expand[]=customer&expand[]=discounts&created[gte]=5",
        b"metadata[sku]=A1&discounts[0][coupon]=SPRING&lines[1][quantity]=2&lines[0][quantity]=1&email=",
    )
    assert got == {"expand": ["customer", "discounts"], "created": {"gte": "5"}, "metadata": {"sku": "A1"},
                   "discounts": [{"coupon": "SPRING"}], "lines": [{"quantity": "1"}, {"quantity": "2"}],
                   "email": ""}
    assert stripe_forms.decode("expand[0]=a&expand[1]=b") == {"expand": ["a", "b"]}
    with pytest.raises(stripe_forms.ParamError):
        stripe_forms.decode("a=1&a[b]=2")
    with pytest.raises(stripe_forms.ParamError):
        stripe_forms.decode("a[b=1")
    with pytest.raises(stripe_forms.ParamError):
        stripe_forms.as_int("x", "limit")


def test_signature_matches_the_official_library() -> None:
    from growth_stack_dagster.sandbox.stripe import mask_key, sign_payload

    payload = json.dumps({"id": "evt_1", "object": "event"}).encode()
    header = sign_payload(payload, "whsec_abc", 1_700_000_000)
    assert header == stripe.WebhookSignature.generate_signature_header(payload.decode(), "whsec_abc", 1_700_000_000)
    assert mask_key("sk_test_abcdefgh1234") == "sk_test_********1234"
