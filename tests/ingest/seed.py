"""Small example-company history in each API's own JSON shape, seeded into the sandbox through
`POST /_admin/seed/<system>/<collection>` (see the seeding contract)."""

from __future__ import annotations

import datetime as dt
from typing import Any

import requests

BASE = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)


def iso(t: dt.datetime) -> str:
    return t.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def seed(sandbox: str, system: str, collection: str, objects: list[dict[str, Any]]) -> int:
    r = requests.post(f"{sandbox}/_admin/seed/{system}/{collection}", json=objects, timeout=60)
    r.raise_for_status()
    return r.json()["seeded"]


def hubspot_history(contacts: int = 30, companies: int = 5, deals: int = 8, calls: int = 6,
                    owners: int = 3, archived_contacts: int = 2) -> dict[str, list[dict[str, Any]]]:
    """Contacts (with custom properties, some archived), companies, deals with stage history
    and contacts, calls, owners."""
    out: dict[str, list[dict[str, Any]]] = {"owners": [], "companies": [], "contacts": [], "deals": [], "calls": []}
    for i in range(owners):
        t = BASE + dt.timedelta(hours=i)
        out["owners"].append({"id": str(100 + i), "email": f"rep{i}@example.com", "firstName": f"Rep{i}",
                              "lastName": "Sales", "userId": 9000 + i, "createdAt": iso(t), "updatedAt": iso(t),
                              "archived": False})
    for i in range(companies):
        t = BASE + dt.timedelta(hours=i)
        out["companies"].append({"id": str(2000 + i), "properties": {"name": f"Wholesale {i}", "domain": f"w{i}.example"},
                                 "createdAt": iso(t), "updatedAt": iso(t), "archived": False})
    for i in range(contacts):
        t = BASE + dt.timedelta(hours=i)
        archived = i >= contacts - archived_contacts
        obj = {"id": str(1000 + i), "properties": {
            "email": f"User{i}@Example.com ", "firstname": f"First{i}", "lastname": f"Last{i}",
            "date_of_birth": f"19{80 + i % 20}-0{1 + i % 9}-15", "customer_type": "wholesale" if i % 3 == 0 else "retail",
            "lead_qualified": "true" if i % 2 else "false", "hubspot_owner_id": str(100 + i % owners)},
            "createdAt": iso(t), "updatedAt": iso(t + dt.timedelta(minutes=5)), "archived": archived,
            "associations": {"companies": [str(2000 + i % companies)]}}
        if archived:
            obj["archivedAt"] = iso(t + dt.timedelta(days=1))
        out["contacts"].append(obj)
    for i in range(deals):
        t = BASE + dt.timedelta(hours=i)
        out["deals"].append({
            "id": str(3000 + i), "properties": {"dealname": f"Deal {i}", "amount": str(100 * (i + 1)),
                                                "dealstage": "closedwon", "pipeline": "default"},
            "createdAt": iso(t), "updatedAt": iso(t + dt.timedelta(days=2)), "archived": False,
            "associations": {"contacts": [str(1000 + i)]},
            "propertiesWithHistory": {"dealstage": [
                {"value": "appointmentscheduled", "timestamp": iso(t), "sourceType": "CRM_UI"},
                {"value": "closedwon", "timestamp": iso(t + dt.timedelta(days=2)), "sourceType": "CRM_UI"}]}})
    for i in range(calls):
        t = BASE + dt.timedelta(hours=i)
        out["calls"].append({"id": str(4000 + i), "properties": {
            "hs_timestamp": iso(t), "hs_call_title": f"Call {i}", "hs_call_duration": "60000",
            "hubspot_owner_id": str(100 + i % owners)},
            "createdAt": iso(t), "updatedAt": iso(t), "archived": False,
            "associations": {"contacts": [str(1000 + i)]}})
    return out


def stripe_history(customers: int = 10, invoices: int = 20, lines_per_invoice: int = 3) -> dict[str, list[dict[str, Any]]]:
    """Customers, products with SKUs, prices, a coupon, paid invoices with line items and discounts, charges."""
    t0 = int(BASE.timestamp())
    skus = ["SKU1", "SKU2", "SKU3"]
    products = [{"id": f"prod_{s}", "object": "product", "name": f"Product {s}", "active": True, "created": t0,
                 "updated": t0, "metadata": {"sku": s}, "livemode": False} for s in skus]
    prices = [{"id": f"price_{s}", "object": "price", "product": f"prod_{s}", "unit_amount": 1000 * (n + 1),
               "currency": "usd", "active": True, "type": "one_time", "created": t0, "livemode": False}
              for n, s in enumerate(skus)]
    coupons = [{"id": "SPRING10", "object": "coupon", "percent_off": 10.0, "duration": "once", "valid": True,
                "created": t0, "livemode": False}]
    custs = [{"id": f"cus_{i:05d}", "object": "customer", "email": f"user{i}@example.com", "name": f"User {i}",
              "created": t0 + i * 60, "metadata": {"app_user_id": f"u_{i}"}, "livemode": False}
             for i in range(customers)]
    invs, charges = [], []
    for i in range(invoices):
        created = t0 + 3600 + i * 60
        inv_id = f"in_{i:06d}"
        lines = [{"id": f"il_{i:06d}_{j}", "object": "line_item", "amount": 1000 * (j + 1), "currency": "usd",
                  "quantity": 1, "description": f"Product SKU{j % 3 + 1}",
                  "pricing": {"price_details": {"price": f"price_SKU{j % 3 + 1}", "product": f"prod_SKU{j % 3 + 1}"}},
                  "metadata": {}} for j in range(lines_per_invoice)]
        subtotal = sum(line["amount"] for line in lines)
        discount = subtotal // 10 if i % 4 == 0 else 0
        invs.append({"id": inv_id, "object": "invoice", "customer": custs[i % customers]["id"], "created": created,
                     "status": "paid", "currency": "usd", "subtotal": subtotal, "total": subtotal - discount,
                     "amount_paid": subtotal - discount, "livemode": False,
                     "discounts": ["di_SPRING10_%d" % i] if discount else [],
                     "total_discount_amounts": [{"amount": discount, "discount": "di_SPRING10_%d" % i}] if discount else [],
                     "status_transitions": {"paid_at": created + 30, "finalized_at": created},
                     "lines": {"object": "list", "data": lines, "has_more": False, "total_count": len(lines),
                               "url": f"/v1/invoices/{inv_id}/lines"}})
        charges.append({"id": f"ch_{i:06d}", "object": "charge", "amount": subtotal - discount, "currency": "usd",
                        "customer": custs[i % customers]["id"], "created": created + 30, "status": "succeeded",
                        "paid": True, "livemode": False})
    return {"customers": custs, "products": products, "prices": prices, "coupons": coupons,
            "invoices": invs, "charges": charges}


def facebook_history(campaigns: int = 3, days: int = 5) -> dict[str, list[dict[str, Any]]]:
    camps = [{"id": str(6000 + i), "account_id": "1000", "name": f"spring_sale_{i}", "status": "ACTIVE",
              "objective": "OUTCOME_SALES", "created_time": "2026-01-01T00:00:00+0000",
              "updated_time": "2026-01-01T00:00:00+0000"} for i in range(campaigns)]
    start = dt.date(2026, 1, 1)
    insights = []
    for c in camps:
        for d in range(days):
            day = (start + dt.timedelta(days=d)).isoformat()
            insights.append({"id": f"{c['id']}:{day}", "account_id": "1000", "campaign_id": c["id"],
                             "campaign_name": c["name"], "date_start": day, "date_stop": day,
                             "spend": f"{10 + d}.50", "impressions": str(1000 + d), "clicks": str(20 + d)})
    return {"campaigns": camps, "insights": insights}


def zendesk_history(users: int = 8, tickets: int = 12) -> dict[str, list[dict[str, Any]]]:
    us = [{"id": 500 + i, "name": f"User {i}", "email": f"user{i}@example.com", "external_id": f"u_{i}",
           "role": "end-user", "created_at": "2026-01-01T00:00:00Z", "updated_at": f"2026-01-01T00:{i:02d}:00Z"}
          for i in range(users)]
    ts = [{"id": 700 + i, "subject": f"Help {i}", "description": "It broke", "status": "open", "priority": "normal",
           "requester_id": 500 + i % users, "submitter_id": 500 + i % users, "tags": ["billing"] if i % 2 else [],
           "created_at": "2026-01-02T00:00:00Z", "updated_at": f"2026-01-02T00:{i:02d}:00Z"}
          for i in range(tickets)]
    return {"users": us, "tickets": ts}


HISTORIES = {"hubspot": hubspot_history, "stripe": stripe_history, "facebook": facebook_history,
             "zendesk": zendesk_history}


def seed_all(sandbox: str, **sizes: dict[str, Any]) -> dict[str, dict[str, list[dict[str, Any]]]]:
    """Seed every system; returns what was seeded, by system and collection."""
    out = {}
    for system, history in HISTORIES.items():
        data = history(**sizes.get(system, {}))
        for collection, objects in data.items():
            seed(sandbox, system, collection, objects)
        out[system] = data
    return out
