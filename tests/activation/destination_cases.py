"""The five API destinations of issue "Activate" (Customer.io, Amplitude, Facebook audience, Zendesk,
webhook) described once each, so the same fault tests run against every one: how to build it against
the sandbox, a sync declaration, records, and how to read a record back through the sandbox."""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from growth_stack_dagster.activation.destinations import destination_class
from growth_stack_dagster.activation.destinations.base import FieldMapping, Record, SyncSpec

TOKEN = "sk_test_sandbox"
ZENDESK_AUTH = ("agent@example.com/token", TOKEN)


def session(idempotent: bool, read_timeout: float = 10.0, retries: int = 4) -> requests.Session:
    """A session configured like the engine's: urllib3 Retry honouring Retry-After, backing off on 429
    (and, for idempotent destinations, 5xx and read timeouts); non-idempotent ones retry only 429."""
    retry = Retry(total=retries, connect=retries, read=retries if idempotent else 0, status=retries,
                  status_forcelist=(429, 500, 502, 503, 504) if idempotent else (429,),
                  backoff_factor=0.05, backoff_jitter=0.05, respect_retry_after_header=True,
                  allowed_methods=None, raise_on_status=True)

    class Adapter(HTTPAdapter):
        timeout = (5.0, read_timeout)

        def send(self, request, **kwargs):  # noqa: D102
            kwargs["timeout"] = kwargs.get("timeout") or self.timeout
            return super().send(request, **kwargs)

    s = requests.Session()
    s.mount("http://", Adapter(max_retries=retry))
    return s


def sha(email: str) -> str:
    return hashlib.sha256(email.strip().lower().encode()).hexdigest()


@dataclasses.dataclass
class Case:
    name: str
    spec: SyncSpec
    record: Callable[[int, bool], Record]  # (i, is_high_value) -> Record
    read: Callable[[str, str], Any]  # (sandbox_url, key) -> what the destination holds for the key, or None
    holds: Callable[[Any, bool], bool]  # (read value, is_high_value) -> the destination holds that value
    write_id: Callable[[str, str], tuple[str, str, str]]  # (sandbox_url, key) -> (system, collection, id)
    post_path: str  # the path (prefix) of the write request, for faults
    idempotent: bool
    options: dict[str, Any] = dataclasses.field(default_factory=dict)

    def destination(self, sandbox_url: str, sess: requests.Session | None = None):
        cls = destination_class(self.name)
        base = f"{sandbox_url}/{self.name}"
        credential = {"customerio": f"site_1:{TOKEN}", "zendesk": f"{ZENDESK_AUTH[0]}:{TOKEN}"}.get(self.name, TOKEN)
        return cls(base, credential, sess or session(self.idempotent))


def _spec(name: str, destination: str, obj: str, mode: str, key: str, match: str, fields: list[tuple[str, str]],
          **options) -> SyncSpec:
    return SyncSpec(name=name, model=f"sync_{destination}", destination=destination, object=obj, mode=mode,
                    primary_key=key, match_field=match,
                    mappings=tuple(FieldMapping(c, f, "clear") for c, f in fields), options=options)


# ---- Customer.io
def _cio_read(sandbox: str, key: str) -> dict | None:
    r = requests.get(f"{sandbox}/customerio/v1/customers/{key}/attributes",
                     headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    return r.json()["customer"]["attributes"] if r.status_code == 200 else None


CUSTOMERIO = Case(
    name="customerio",
    spec=_spec("customerio_people", "customerio", "people", "upsert", "customerio_id", "id",
               [("email", "email"), ("is_high_value", "is_high_value"), ("lifetime_value", "lifetime_value")]),
    record=lambda i, high: Record(f"u_{i:05d}", "upsert", {"email": f"person{i}@shop.test", "is_high_value": high,
                                                            "lifetime_value": 100 + i}),
    read=_cio_read,
    holds=lambda got, high: got is not None and got.get("is_high_value") == ("true" if high else "false"),
    write_id=lambda sandbox, key: ("customerio", "customers", key),
    post_path="/customerio/api/v2/batch",
    idempotent=True,
)


# ---- Amplitude
def _amp_read(sandbox: str, key: str) -> dict | None:
    r = requests.get(f"{sandbox}/amplitude/v1/userprofile", params={"user_id": key, "get_amp_props": "true"},
                     headers={"Authorization": f"Api-Key {TOKEN}"}, timeout=10)
    data = r.json().get("userData")
    return data["amp_props"] if data else None


AMPLITUDE = Case(
    name="amplitude",
    spec=_spec("amplitude_users", "amplitude", "user_properties", "upsert", "user_id", "user_id",
               [("is_high_value", "is_high_value"), ("lifetime_value", "lifetime_value")]),
    record=lambda i, high: Record(f"u_{i:05d}", "upsert", {"is_high_value": high, "lifetime_value": 100 + i}),
    read=_amp_read,
    holds=lambda got, high: got is not None and got.get("is_high_value") is high,
    write_id=lambda sandbox, key: ("amplitude", "users", f"user:{key}"),
    post_path="/amplitude/identify",
    idempotent=True,
)


# ---- Facebook
def _fb_members(sandbox: str, audience_id: str) -> set[str]:
    r = requests.get(f"{sandbox}/facebook/_sandbox/customaudiences/{audience_id}/users", timeout=10)
    r.raise_for_status()
    return {m["key"] for m in r.json()["data"]}


def fb_audience(sandbox: str, name: str = "High value customers") -> str | None:
    r = requests.get(f"{sandbox}/facebook/v21.0/act_1000/customaudiences", params={"fields": "id,name"},
                     headers={"Authorization": f"Bearer {TOKEN}"}, timeout=10)
    return next((a["id"] for a in r.json()["data"] if a["name"] == name), None)


def _fb_read(sandbox: str, key: str) -> bool | None:
    audience = fb_audience(sandbox)
    return (key in _fb_members(sandbox, audience)) if audience else None


FACEBOOK = Case(
    name="facebook",
    spec=_spec("facebook_high_value", "facebook", "audience", "membership", "email_sha256", "EMAIL_SHA256",
               [("email_sha256", "EMAIL_SHA256")]),
    record=lambda i, high: Record(sha(f"person{i}@shop.test"), "add" if high else "remove",
                                  {"EMAIL_SHA256": sha(f"person{i}@shop.test")}),
    read=_fb_read,
    holds=lambda got, high: got is high,
    write_id=lambda sandbox, key: ("facebook", "custom_audience_users", f"{fb_audience(sandbox)}:{key}"),
    post_path="/facebook/v21.0/",  # the audience's users edge: /facebook/v21.0/<audience id>/users
    idempotent=False,
)


# ---- Zendesk
def zendesk_user(sandbox: str, external_id: str) -> dict | None:
    r = requests.get(f"{sandbox}/zendesk/api/v2/users/search.json", params={"external_id": external_id},
                     auth=ZENDESK_AUTH, timeout=10)
    users = r.json()["users"]
    return users[0] if users else None


ZENDESK = Case(
    name="zendesk",
    spec=_spec("zendesk_users", "zendesk", "users", "upsert", "customer_id", "external_id",
               [("customer_id", "external_id"), ("email", "email"), ("name", "name"),
                ("is_high_value", "user_fields.is_high_value"), ("lifetime_value", "user_fields.lifetime_value")]),
    record=lambda i, high: Record(f"c{i:05d}", "upsert", {"external_id": f"c{i:05d}", "email": f"person{i}@shop.test",
                                                          "name": f"Person {i}", "user_fields.is_high_value": high,
                                                          "user_fields.lifetime_value": 100 + i}),
    read=zendesk_user,
    holds=lambda got, high: got is not None and got["user_fields"].get("is_high_value") is high,
    write_id=lambda sandbox, key: ("zendesk", "users", str((zendesk_user(sandbox, key) or {}).get("id"))),
    post_path="/zendesk/api/v2/users/create_or_update_many",
    idempotent=True,
)


# ---- webhook
def _hook_read(sandbox: str, key: str) -> dict | None:
    r = requests.get(f"{sandbox}/webhook/_sandbox/webhook_records/records", timeout=10)
    return next((rec["fields"] for rec in r.json()["data"] if rec["key"] == key), None)


WEBHOOK = Case(
    name="webhook",
    spec=_spec("webhook_records", "webhook", "records", "upsert", "customer_id", "key",
               [("is_high_value", "is_high_value"), ("lifetime_value", "lifetime_value")]),
    record=lambda i, high: Record(f"c{i:05d}", "upsert", {"is_high_value": high, "lifetime_value": 100 + i}),
    read=_hook_read,
    holds=lambda got, high: got is not None and got.get("is_high_value") is high,
    write_id=lambda sandbox, key: ("webhook", "records", f"webhook_records:{key}"),
    post_path="/webhook/webhook_records",
    idempotent=False,
)

CASES = {c.name: c for c in (CUSTOMERIO, AMPLITUDE, FACEBOOK, ZENDESK, WEBHOOK)}


def add_fault(sandbox: str, **rule) -> int:
    r = requests.post(f"{sandbox}/_admin/faults", json=rule, timeout=10)
    r.raise_for_status()
    return r.json()["id"]


def fired(sandbox: str, rule_id: int) -> int:
    return next(r["fired"] for r in requests.get(f"{sandbox}/_admin/faults", timeout=10).json() if r["id"] == rule_id)


def writes(sandbox: str, system: str, collection: str) -> dict[str, int]:
    r = requests.get(f"{sandbox}/_admin/writes", params={"system": system, "collection": collection}, timeout=10)
    r.raise_for_status()
    return r.json()["writes"]
