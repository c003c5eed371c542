"""The sandbox's fault injection and write counts, as tests of every destination use them: rules that
match the HTTP method as well as the path, faults that apply the write and then fail or drop the
connection, and per-record write counts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from tests.servers import reset_sandbox, sandbox_server

CIO = ("site_1", "sk_test_sandbox")
BEARER = {"Authorization": "Bearer sk_test_sandbox"}


@pytest.fixture(scope="module")
def module_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    home = tmp_path_factory.mktemp("gs_home")
    with sandbox_server(home) as url:
        yield url


@pytest.fixture
def sandbox_url(module_sandbox: str) -> str:
    """One sandbox for the module, reset (objects, faults, write counts) before each test."""
    return reset_sandbox(module_sandbox)


def put_person(sandbox: str, pid: str, **attrs) -> requests.Response:
    return requests.put(f"{sandbox}/customerio/api/v1/customers/{pid}", json=attrs, auth=CIO, timeout=10)


def person(sandbox: str, pid: str) -> dict | None:
    r = requests.get(f"{sandbox}/customerio/v1/customers/{pid}/attributes", headers=BEARER, timeout=10)
    return r.json()["customer"]["attributes"] if r.status_code == 200 else None


def add(sandbox: str, **rule) -> requests.Response:
    return requests.post(f"{sandbox}/_admin/faults", json=rule, timeout=10)


def test_a_rule_with_a_method_leaves_other_methods_alone(sandbox_url: str) -> None:
    assert put_person(sandbox_url, "u_1", plan="pro").status_code == 200
    add(sandbox_url, prefix="/customerio/api/v1/customers", kind="error", status=503, method="delete", count=1)
    assert put_person(sandbox_url, "u_1", plan="team").status_code == 200  # a PUT: not matched
    r = requests.delete(f"{sandbox_url}/customerio/api/v1/customers/u_1", auth=CIO, timeout=10)
    assert r.status_code == 503
    assert person(sandbox_url, "u_1")["plan"] == "team"
    [rule] = requests.get(f"{sandbox_url}/_admin/faults", timeout=10).json()
    assert rule["method"] == "DELETE" and rule["fired"] == 1 and rule["count"] == 0


def test_apply_then_error_writes_and_then_answers_5xx(sandbox_url: str) -> None:
    add(sandbox_url, prefix="/customerio/api/v1", kind="apply_then_error", status=500, method="PUT")
    r = put_person(sandbox_url, "u_2", plan="pro")
    assert r.status_code == 500 and r.json()["meta"]["error"]
    assert person(sandbox_url, "u_2")["plan"] == "pro"  # the write landed all the same
    counts = requests.get(f"{sandbox_url}/_admin/writes", params={"system": "customerio", "collection": "customers"},
                          timeout=10).json()["writes"]
    assert counts == {"u_2": 1}


def test_drop_breaks_the_connection_with_or_without_the_write(sandbox_url: str) -> None:
    add(sandbox_url, prefix="/customerio/api/v1", kind="drop")
    with pytest.raises(requests.exceptions.RequestException):
        put_person(sandbox_url, "u_3", plan="pro")
    assert person(sandbox_url, "u_3") is None
    add(sandbox_url, prefix="/customerio/api/v1", kind="apply_then_drop")
    with pytest.raises(requests.exceptions.RequestException):
        put_person(sandbox_url, "u_4", plan="pro")
    assert person(sandbox_url, "u_4")["plan"] == "pro"
    assert put_person(sandbox_url, "u_5", plan="pro").status_code == 200  # each fired once


def test_write_counts_are_listed_totalled_and_reset(sandbox_url: str) -> None:
    for _ in range(3):
        put_person(sandbox_url, "u_6", n=1)
    put_person(sandbox_url, "u_7", n=1)
    everything = requests.get(f"{sandbox_url}/_admin/writes", timeout=10).json()["writes"]
    assert everything == {"customerio/customers/u_6": 3, "customerio/customers/u_7": 1}
    assert requests.get(f"{sandbox_url}/_admin/stats", timeout=10).json()["writes"] == {"customerio": {"customers": 4}}
    half = requests.get(f"{sandbox_url}/_admin/writes", params={"system": "customerio"}, timeout=10)
    assert half.status_code == 400 and "collection" in half.json()["error"]
    requests.post(f"{sandbox_url}/_admin/reset", timeout=10).raise_for_status()
    assert requests.get(f"{sandbox_url}/_admin/writes", timeout=10).json()["writes"] == {}


def test_unknown_rules_are_refused_with_the_allowed_values(sandbox_url: str) -> None:
    r = add(sandbox_url, prefix="/zendesk", kind="explode")
    assert r.status_code == 400 and "apply_then_error" in r.json()["error"]
    r = add(sandbox_url, prefix="/zendesk", kind="error", verb="GET")
    assert r.status_code == 400 and "method" in r.json()["error"]


def test_one_rule_is_removed_by_its_id_and_the_others_stay(sandbox_url: str) -> None:
    """DELETE /_admin/faults?id=N removes rule N only, so a test can switch one outage for another without
    a moment in between when the service is up."""
    first = add(sandbox_url, prefix="/customerio/api/v1/customers", kind="error", status=503, count=-1).json()["id"]
    add(sandbox_url, prefix="/customerio/api/v1/customers", kind="error", status=500, count=-1)
    assert put_person(sandbox_url, "p1", plan="pro").status_code == 503
    requests.delete(f"{sandbox_url}/_admin/faults", params={"id": first}, timeout=10).raise_for_status()
    assert put_person(sandbox_url, "p1", plan="pro").status_code == 500
    bad = requests.delete(f"{sandbox_url}/_admin/faults", params={"id": "x"}, timeout=10)
    assert bad.status_code == 400 and "rule's number" in bad.json()["error"]
    requests.delete(f"{sandbox_url}/_admin/faults", timeout=10).raise_for_status()
    assert put_person(sandbox_url, "p1", plan="pro").status_code == 200
