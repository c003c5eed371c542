"""Every API destination (Customer.io, Amplitude, Facebook audience, Zendesk, webhook) against the real
sandbox on loopback, through `Destination.send` with a urllib3-`Retry` session as the engine gives it:
records read back through the sandbox, and the faults of issue "Activate" §5 (429 with and without
Retry-After, 5xx, timeouts, per-record 400s, whole-batch 400, applied-then-5xx, dropped connections),
with the sandbox's per-record write counts showing what was written how many times."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from growth_stack_dagster.activation.destinations.base import BatchRejected, DestinationUnavailable
from tests.activation.destination_cases import CASES, Case, add_fault, fired, session, writes
from tests.servers import reset_sandbox, sandbox_server

NAMES = list(CASES)


@pytest.fixture(scope="module")
def module_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One sandbox for the module (each test starts from `/_admin/reset`): published limits x10 so reading
    records back through the App APIs never waits, and quick Zendesk jobs."""
    home = tmp_path_factory.mktemp("gs_home")
    env = {"GROWTH_STACK_SANDBOX_RATE_LIMIT_SCALE": "10",
           "GROWTH_STACK_SANDBOX_ZENDESK_JOB_SECONDS": "0.15"}
    with sandbox_server(home, env) as url:
        yield url


@pytest.fixture
def sandbox(module_sandbox: str) -> str:
    return reset_sandbox(module_sandbox)


def prepared(case: Case, sandbox: str, **session_args):
    """The destination, prepared (Facebook's audience exists), and the path its writes go to."""
    dest = case.destination(sandbox, session(case.idempotent, **session_args) if session_args else None)
    dest.prepare(case.spec)
    path = f"/facebook/v21.0/{dest.audience_id(case.spec)}/users" if case.name == "facebook" else case.post_path
    return dest, path


def counts(case: Case, sandbox: str, keys: list[str]) -> list[int]:
    ids = [case.write_id(sandbox, k) for k in keys]
    table = writes(sandbox, ids[0][0], ids[0][1])
    return [table.get(i[2], 0) for i in ids]


def settled_counts(case: Case, sandbox: str, keys: list[str], expected: list[int], wait: float = 5.0) -> list[int]:
    """The write counts once they reach `expected` (a write still in flight, such as a queued Zendesk job
    or a slow request, lands later), or as they are after `wait` seconds."""
    deadline = time.monotonic() + wait
    while (got := counts(case, sandbox, keys)) != expected and time.monotonic() < deadline:
        time.sleep(0.1)
    return got


@pytest.mark.parametrize("name", NAMES)
def test_send_writes_every_record_once_and_reads_back(name: str, sandbox: str) -> None:
    case = CASES[name]
    dest, _ = prepared(case, sandbox)
    records = [case.record(i, i % 2 == 0) for i in range(6)]
    results = dest.send(case.spec, records)
    assert sorted(r.key for r in results) == sorted(r.key for r in records)
    assert all(r.status == "accepted" for r in results), results
    for i, record in enumerate(records):
        if name == "facebook" and i % 2:
            continue  # a removal of someone never added leaves them out, as asked
        assert case.holds(case.read(sandbox, record.key), i % 2 == 0), record.key
    written = [r for i, r in enumerate(records) if not (name == "facebook" and i % 2)]
    assert counts(case, sandbox, [r.key for r in written]) == [1] * len(written)


@pytest.mark.parametrize("name", NAMES)
def test_429_with_retry_after_is_waited_out(name: str, sandbox: str) -> None:
    case = CASES[name]
    dest, path = prepared(case, sandbox)
    rule = add_fault(sandbox, prefix=path, kind="rate_limit", retry_after=1, count=1, method="POST")
    records = [case.record(i, True) for i in range(3)]
    if name == "facebook":
        # Meta throttles with HTTP 400 code 80004, not a 429: the run stops and the members stay pending
        with pytest.raises(DestinationUnavailable, match="80004"):
            dest.send(case.spec, records)
        assert counts(case, sandbox, [r.key for r in records]) == [0, 0, 0]
        records_after = dest.send(case.spec, records)
        assert all(r.status == "accepted" for r in records_after)
    else:
        assert all(r.status == "accepted" for r in dest.send(case.spec, records))
    assert fired(sandbox, rule) == 1
    assert all(case.holds(case.read(sandbox, r.key), True) for r in records)
    assert counts(case, sandbox, [r.key for r in records]) == [1, 1, 1]


def test_429_without_retry_after_backs_off(sandbox: str) -> None:
    # Amplitude's 429 carries no Retry-After: urllib3's exponential backoff with jitter paces the retries
    case = CASES["amplitude"]
    dest, path = prepared(case, sandbox)
    rule = add_fault(sandbox, prefix=path, kind="rate_limit", count=2)
    records = [case.record(i, True) for i in range(3)]
    assert all(r.status == "accepted" for r in dest.send(case.spec, records))
    assert fired(sandbox, rule) == 2
    assert counts(case, sandbox, [r.key for r in records]) == [1, 1, 1]


@pytest.mark.parametrize("name", NAMES)
def test_5xx(name: str, sandbox: str) -> None:
    case = CASES[name]
    dest, path = prepared(case, sandbox)
    rule = add_fault(sandbox, prefix=path, kind="error", status=503, count=1, method="POST")
    records = [case.record(i, True) for i in range(3)]
    if case.idempotent:
        assert all(r.status == "accepted" for r in dest.send(case.spec, records))  # retried by the session
        assert counts(case, sandbox, [r.key for r in records]) == [1, 1, 1]
    else:
        # a 5xx may follow an applied write where sending twice counts twice: stop, keep the records pending
        with pytest.raises(DestinationUnavailable, match="503"):
            dest.send(case.spec, records)
        assert counts(case, sandbox, [r.key for r in records]) == [0, 0, 0]
    assert fired(sandbox, rule) == 1


@pytest.mark.parametrize("name", NAMES)
def test_per_record_400_rejects_only_that_record(name: str, sandbox: str) -> None:
    case = CASES[name]
    dest, path = prepared(case, sandbox)
    records = [case.record(i, True) for i in range(4)]
    bad = records[2]
    match = bad.payload["email"] if name == "zendesk" else bad.key  # Zendesk names a failed user by email
    add_fault(sandbox, prefix=path, kind="reject", match=match, count=-1)
    if name == "amplitude":
        # the Identify API refuses the whole request: the engine splits the batch to isolate the record
        with pytest.raises(BatchRejected):
            dest.send(case.spec, records)
        results = dest.send(case.spec, records[:2]) + dest.send(case.spec, records[3:])
        with pytest.raises(BatchRejected):
            dest.send(case.spec, [bad])
    else:
        results = dest.send(case.spec, records)
        by_key = {r.key: r for r in results}
        assert by_key[bad.key].status == "rejected" and by_key[bad.key].message
    good = [r for r in records if r is not bad]
    assert all(r.status == "accepted" for r in results if r.key != bad.key)
    assert all(case.holds(case.read(sandbox, r.key), True) for r in good)
    assert not case.holds(case.read(sandbox, bad.key), True)


@pytest.mark.parametrize("name", NAMES)
def test_whole_batch_400_raises_batch_rejected_and_writes_nothing(name: str, sandbox: str) -> None:
    case = CASES[name]
    dest, path = prepared(case, sandbox)
    add_fault(sandbox, prefix=path, kind="error", status=400, count=1, method="POST")
    records = [case.record(i, True) for i in range(3)]
    with pytest.raises(BatchRejected):
        dest.send(case.spec, records)
    if name != "zendesk":  # (a Zendesk user that was never created has no id to count by)
        assert counts(case, sandbox, [r.key for r in records]) == [0, 0, 0]
    assert not any(case.holds(case.read(sandbox, r.key), True) for r in records)


@pytest.mark.parametrize("name", NAMES)
def test_applied_then_5xx(name: str, sandbox: str) -> None:
    case = CASES[name]
    dest, path = prepared(case, sandbox)
    add_fault(sandbox, prefix=path, kind="apply_then_error", status=502, count=1, method="POST")
    records = [case.record(i, True) for i in range(3)]
    if case.idempotent:
        # sent again by the session's Retry: harmless, the destination holds the same values
        assert all(r.status == "accepted" for r in dest.send(case.spec, records))
        assert counts(case, sandbox, [r.key for r in records]) == [2, 2, 2]
    else:
        with pytest.raises(DestinationUnavailable, match="502"):
            dest.send(case.spec, records)
        assert counts(case, sandbox, [r.key for r in records]) == [1, 1, 1]  # never sent twice
    assert all(case.holds(case.read(sandbox, r.key), True) for r in records)


@pytest.mark.parametrize("name", NAMES)
def test_dropped_connection_after_the_write_is_an_unknown_outcome(name: str, sandbox: str) -> None:
    case = CASES[name]
    dest, path = prepared(case, sandbox)
    add_fault(sandbox, prefix=path, kind="apply_then_drop", count=1, method="POST")
    records = [case.record(i, True) for i in range(3)]
    with pytest.raises(DestinationUnavailable, match="did not answer"):
        dest.send(case.spec, records)
    assert settled_counts(case, sandbox, [r.key for r in records], [1, 1, 1]) == [1, 1, 1]
    assert all(case.holds(case.read(sandbox, r.key), True) for r in records)


@pytest.mark.parametrize("name", ["customerio", "amplitude", "zendesk"])
def test_timeout_is_retried_for_idempotent_destinations(name: str, sandbox: str) -> None:
    case = CASES[name]
    dest, path = prepared(case, sandbox, read_timeout=0.5)
    add_fault(sandbox, prefix=path, kind="slow", delay=1.0, count=1, method="POST")
    records = [case.record(i, True) for i in range(2)]
    assert all(r.status == "accepted" for r in dest.send(case.spec, records))
    assert all(case.holds(case.read(sandbox, r.key), True) for r in records)
    # the slow request still lands after the client gave up, beside the retry's write
    assert settled_counts(case, sandbox, [r.key for r in records], [2, 2]) == [2, 2]


@pytest.mark.parametrize("name", ["facebook", "webhook"])
def test_timeout_of_a_non_idempotent_destination_stops_the_run(name: str, sandbox: str) -> None:
    case = CASES[name]
    dest, path = prepared(case, sandbox, read_timeout=0.5)
    add_fault(sandbox, prefix=path, kind="slow", delay=1.0, count=1, method="POST")
    records = [case.record(i, True) for i in range(2)]
    with pytest.raises(DestinationUnavailable, match="did not answer"):
        dest.send(case.spec, records)
    # the write landed after the client gave up; it was not sent a second time
    assert settled_counts(case, sandbox, [r.key for r in records], [1, 1]) == [1, 1]
