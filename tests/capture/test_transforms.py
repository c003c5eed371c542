"""Webhook transformations (pure functions)."""

from __future__ import annotations

import orjson
import pytest

from growth_stack_dagster.capture import transforms
from tests.capture.payloads import DAY1, customerio_body, envelope, stripe_invoice_paid


@pytest.mark.parametrize("metric,event", [("delivered", "Email Delivered"), ("opened", "Email Opened"),
                                          ("clicked", "Email Clicked")])
def test_customerio_email_metrics_become_tracks_for_the_person(metric: str, event: str) -> None:
    extra = {"href": "https://shop.example.com/cart", "link_id": 3} if metric == "clicked" else {}
    env = envelope(customerio_body(metric, "01J9Z5ABCDEFG", **extra), DAY1)
    [msg] = transforms.transform_webhook("customerio", env)
    assert msg["type"] == "track" and msg["event"] == event
    assert msg["userId"] == "user-42"
    assert msg["messageId"] == "customerio-01J9Z5ABCDEFG"
    assert msg["timestamp"] == "2025-11-20T12:00:00.000Z"
    assert msg["receivedAt"] == env["receivedAt"]
    assert msg["context"]["traits"] == {"email": "ada@example.com"}
    props = msg["properties"]
    assert props["campaign_id"] == 6 and props["subject"] == "Your cart misses you"
    assert props["delivery_id"] == "RPILAgUBcRhIBqSfeiIwdIYJKxTY" and props["email"] == "ada@example.com"
    if metric == "clicked":
        assert props["link_url"] == "https://shop.example.com/cart" and props["link_id"] == 3
    else:
        assert "link_url" not in props


def test_customerio_message_id_is_stable_across_redeliveries() -> None:
    body = customerio_body("opened", "01J9Z5SAME")
    a = transforms.transform_webhook("customerio", envelope(body, DAY1, 1))
    b = transforms.transform_webhook("customerio", envelope(body, DAY1, 99))
    assert a[0]["messageId"] == b[0]["messageId"]


def test_stripe_invoice_paid_becomes_order_completed_with_products() -> None:
    [msg] = transforms.transform_webhook("stripe", envelope(stripe_invoice_paid(), DAY1))
    assert msg["event"] == "Order Completed" and msg["messageId"] == "stripe-evt_1QabcInvoicePaid"
    assert "userId" not in msg
    p = msg["properties"]
    assert p["order_id"] == "in_1QabcDEF"
    assert p["total"] == 49.5 and p["revenue"] == 45.0 and p["tax"] == 4.5 and p["discount"] == 5.0
    assert p["coupon"] == "BF10" and p["currency"] == "USD" and p["discount_ids"] == "di_1QdiscA"
    assert p["stripe_customer_id"] == "cus_Rabc123" and p["email"] == "buyer@example.com"
    assert msg["context"]["traits"] == {"email": "buyer@example.com", "stripe_customer_id": "cus_Rabc123"}
    assert p["products"] == [
        {"product_id": "prod_tee", "sku": "TEE-BLK-M", "name": "Tee", "price": 15.0, "quantity": 2,
         "price_id": "price_tee"},
        {"product_id": "prod_cap", "sku": "prod_cap", "name": "Cap", "price": 20.0, "quantity": 1,
         "price_id": "price_cap"},
    ]
    assert msg["timestamp"] == "2025-11-20T12:01:30.000Z"  # status_transitions.paid_at


def test_stripe_unexpanded_discounts_keep_their_ids() -> None:
    event = stripe_invoice_paid()
    event["data"]["object"]["discounts"] = ["di_1", "di_2"]
    [msg] = transforms.stripe_to_segment(event, {"receivedAt": "2026-11-20T00:00:00Z"})
    assert msg["properties"]["discount_ids"] == "di_1,di_2" and "coupon" not in msg["properties"]


def test_stripe_zero_decimal_currency_is_not_divided() -> None:
    event = stripe_invoice_paid()
    inv = event["data"]["object"]
    inv.update(currency="jpy", total=1200, total_excluding_tax=1200, total_discount_amounts=[])
    [msg] = transforms.stripe_to_segment(event, {"receivedAt": "2026-11-20T00:00:00Z"})
    assert msg["properties"]["total"] == 1200.0 and msg["properties"]["currency"] == "JPY"


def test_other_stripe_events_are_named_after_the_type_or_skipped_by_rule() -> None:
    created = {"id": "evt_cc", "object": "event", "type": "customer.created", "created": 1763640000,
               "data": {"object": {"id": "cus_X", "object": "customer", "email": "x@example.com", "name": "X"}}}
    [msg] = transforms.transform_webhook("stripe", envelope(created, DAY1))
    assert msg["event"] == "Customer Created" and msg["messageId"] == "stripe-evt_cc"
    assert msg["properties"]["customer_id"] == "cus_X" and msg["properties"]["stripe_customer_id"] == "cus_X"
    assert msg["context"]["traits"]["email"] == "x@example.com"
    updated = dict(created, id="evt_cu", type="customer.updated")
    assert transforms.transform_webhook("stripe", envelope(updated, DAY1)) == []
    payout = dict(created, id="evt_po", type="payout.paid")
    assert transforms.transform_webhook("stripe", envelope(payout, DAY1)) == []


def test_generic_webhook_uses_type_and_body_id() -> None:
    body = {"id": "msg_2Lh9", "type": "order.shipped", "timestamp": "2026-11-20T10:00:00Z",
            "data": {"order_id": "o-1", "customer_id": "user-7"}}
    [msg] = transforms.transform_webhook("shipping", envelope(body, DAY1))
    assert msg["event"] == "Order Shipped" and msg["messageId"] == "shipping-msg_2Lh9"
    assert msg["userId"] == "user-7" and msg["properties"]["order_id"] == "o-1"


@pytest.mark.parametrize("source,body,needle", [
    ("customerio", {"metric": "opened", "data": {"customer_id": "u"}, "timestamp": 1}, "event_id"),
    ("stripe", {"id": "evt_1", "type": "invoice.paid", "created": 1, "data": {"object": {"id": "in_1"}}}, "currency"),
    ("stripe", "not json at all", "not JSON"),
])
def test_unusable_payloads_raise_a_precise_error(source: str, body, needle: str) -> None:
    with pytest.raises(transforms.TransformError, match=needle):
        transforms.transform_webhook(source, envelope(body, DAY1))


def test_transform_output_is_json_serialisable() -> None:
    [msg] = transforms.transform_webhook("stripe", envelope(stripe_invoice_paid(), DAY1))
    assert orjson.loads(orjson.dumps(msg)) == msg
