"""The requests the router, the syncs and the alerts share (`lib/tool_requests`): Standard Webhooks headers
that the official library verifies, a refused secret, and HubSpot property bodies."""

from __future__ import annotations

import datetime as dt
import subprocess
import sys

import pytest
from standardwebhooks import Webhook

from growth_stack_dagster.lib.tool_requests import check_webhook_secret, hubspot_property, signed_webhook_headers
from tests.servers import REPO

SECRET = "whsec_c2FuZGJveC1zdGFuZGFyZC13ZWJob29rcw=="


def test_signed_webhook_headers_verify_with_the_official_library() -> None:
    body = b'{"type":"lead.quote_requested","data":{"email":"a@example.com"}}'
    now = int(dt.datetime.now(dt.timezone.utc).timestamp())
    headers = signed_webhook_headers(body, SECRET, "msg_1", now)
    assert headers["webhook-id"] == "msg_1" and headers["webhook-timestamp"] == str(now)
    assert headers["Content-Type"] == "application/json"
    assert Webhook(SECRET).verify(body, headers)["data"]["email"] == "a@example.com"
    assert headers["webhook-signature"] == Webhook(SECRET).sign("msg_1", dt.datetime.fromtimestamp(now, dt.timezone.utc),
                                                                body)


@pytest.mark.parametrize("secret", ["whsec_%%%", "whsec_", ""])
def test_a_secret_that_is_not_standard_webhooks_is_refused_with_what_to_set(secret: str) -> None:
    with pytest.raises(ValueError, match="^MY_SECRET is not a Standard Webhooks secret: set it to whsec_"):
        check_webhook_secret(secret, "MY_SECRET")
    assert check_webhook_secret(SECRET, "MY_SECRET") == SECRET


def test_hubspot_property_bodies() -> None:
    text = hubspot_property("growth_stack_message_id", "Growth Stack message id", "string", "text", "engagement",
                            "dedup key", unique=True)
    assert text == {"name": "growth_stack_message_id", "label": "Growth Stack message id", "type": "string",
                    "fieldType": "text", "groupName": "engagement", "hasUniqueValue": True, "description": "dedup key"}
    flag = hubspot_property("is_vip", "VIP", "bool", "booleancheckbox", "contactinformation", "d")
    assert [(o["label"], o["value"]) for o in flag["options"]] == [("Yes", "true"), ("No", "false")]
    tier = hubspot_property("tier", "Tier", "enumeration", "select", "contactinformation", "d", options=("gold", "silver"))
    assert tier["options"] == [{"label": "gold", "value": "gold", "displayOrder": 0},
                               {"label": "silver", "value": "silver", "displayOrder": 1}]
    assert "options" not in text


def test_the_shared_module_pulls_no_warehouse_library() -> None:
    code = ("import sys; import growth_stack_dagster.lib.tool_requests; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in ('dagster', 'dlt', 'duckdb', 'dbt')))")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
