"""The router: one thread per route, tailing the event files and delivering with a durable cursor.

Guarantees (README "Streaming routes"):
* at least once: a route's cursor moves past a line only after every item made from it is
  settled (accepted, a duplicate, skipped by rule, or dead-lettered); the cursor is saved after
  that, so a crash at any instant re-sends at most what was in flight, and the dedup keys make
  the re-send harmless;
* a destination that refuses an item (4xx) is retried up to `max_attempts`, then the message goes
  to the route's dead-letter file with the reason; a destination that is down (429, 5xx, timeouts)
  holds the route (the backlog waits in the event files) and dead-letters only after both
  `max_attempts` and `retry_window_seconds`;
* every request passes the route's rate gate, so a backlog drains at the destination's limit.
"""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import heapq
import logging
import os
import random
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import orjson

from growth_stack_dagster import config
from growth_stack_dagster.router import tail
from growth_stack_dagster.router.destinations import (
    AmplitudeEvents, Destination, HubSpotNotes, Outcome, RateGate, SignedWebhook, Transient,
)
from growth_stack_dagster.router.routes import Route, matches
from growth_stack_dagster.router.state import COUNTS, DeadLetters, IdentityBook, StateStore
from growth_stack_dagster.router.transforms import TRANSFORMS

log = logging.getLogger("growth_stack.router")

POLL_SECONDS = 0.02  # right after activity; an idle route polls ever more slowly, up to IDLE_POLL_SECONDS
IDLE_POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 5.0
# Files merged per batch: the oldest with unread lines. Enough for every collector worker's open file
# of one moment; a backlog of hundreds of files is then read a few files at a time.
MERGE_FILES = 8
MAX_BACKOFF = 15.0


def sales_webhook_url() -> str:
    """`GROWTH_STACK_SALES_WEBHOOK_URL`, default the sandbox's webhook inbox for sales."""
    return os.environ.get("GROWTH_STACK_SALES_WEBHOOK_URL", config.sandbox_url() + "/webhook-inbox/sales")


def sales_webhook_secret() -> str:
    """`GROWTH_STACK_SALES_WEBHOOK_SECRET` (Standard Webhooks `whsec_...`), default the sandbox's."""
    return os.environ.get("GROWTH_STACK_SALES_WEBHOOK_SECRET", config.DEFAULT_SALES_WEBHOOK_SECRET)


def build_destination(route: Route, stop: threading.Event | None = None) -> Destination:
    """The delivery client of a route, configured from the environment (defaults: the sandbox)."""
    gate = RateGate(route.options.requests_per_second, route.options.events_per_second)
    if route.destination == "amplitude":
        return AmplitudeEvents(os.environ.get("AMPLITUDE_URL", config.sandbox_url() + "/amplitude"),
                               os.environ.get("AMPLITUDE_API_KEY", config.sandbox_token()), gate, stop)
    if route.destination == "hubspot":
        return HubSpotNotes(os.environ.get("HUBSPOT_URL", config.sandbox_url() + "/hubspot"),
                            os.environ.get("HUBSPOT_ACCESS_TOKEN", config.sandbox_token()), gate, stop)
    url = os.environ.get(route.settings["url_env"]) if route.settings.get("url_env") else None
    secret = os.environ.get(route.settings["secret_env"]) if route.settings.get("secret_env") else None
    return SignedWebhook(url or sales_webhook_url(), secret or sales_webhook_secret(), gate, stop)


def _received_epoch(message: dict[str, Any]) -> float | None:
    value = message.get("receivedAt")
    if not isinstance(value, str):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


@dataclasses.dataclass
class Pending:
    """One matched message on its way: the item made from it and its delivery attempts."""

    source: str
    raw: bytes
    message: dict[str, Any] | None
    item: dict[str, Any] | None = None
    received: float | None = None
    attempts: int = 0
    first_failure: float | None = None
    reason: str = ""
    where: str = ""  # file key and offset, for the dead-letter entry


class Pipeline:
    """Filter, transform and deliver one route's messages (the live loop, replay and redrive share it)."""

    def __init__(self, route: Route, destination: Destination, dead_letters: DeadLetters,
                 identities: IdentityBook | None, stop: threading.Event,
                 sleep: Callable[[float], bool] | None = None):
        self.route, self.destination, self.dead_letters = route, destination, dead_letters
        self.identities, self.stop = identities, stop
        self.transform = TRANSFORMS[route.transform]
        self.counts: dict[str, int] = dict.fromkeys(COUNTS, 0)
        self.latencies: collections.deque[float] = collections.deque(maxlen=2000)
        self.head_received: float | None = None
        self._sleep = sleep or stop.wait
        self.on_progress: Callable[[], None] = lambda: None

    # -- the transformation context
    def email_for(self, message: dict[str, Any]) -> str | None:
        """The person's email, from the message or what the stream taught the identity book."""
        return self.identities.email_for(message) if self.identities is not None else IdentityBook._email_in(message)

    def prepare(self, source: str, raw: bytes, where: str = "", message: Any = None,
                learn: bool = True) -> Pending | None:
        """Parse (unless `message` is given), learn, filter and transform one line; None when the
        route does not want it."""
        if message is None:
            try:
                message = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                return Pending(source, raw, None, reason=f"the line is not JSON: {exc}", where=where)
        if not isinstance(message, dict):
            return None
        if learn and self.identities is not None and self.route.options.learn_identities:
            self.identities.learn(message)
        if not matches(self.route.filter, source, message):
            return None
        pending = Pending(source, raw, message, received=_received_epoch(message), where=where)
        try:
            pending.item = self.transform(message, source, self)
        except Exception as exc:  # a message its transformation cannot read: dead-letter it, say why
            pending.reason = f"the transformation {self.route.transform} failed: {type(exc).__name__}: {exc}"
            return pending
        if pending.item is None:
            self.counts["filtered"] += 1
            return None
        return pending

    def _dead_entry(self, p: Pending) -> dict[str, Any]:
        return {"route": self.route.name, "failed_at": dt.datetime.now(dt.timezone.utc).isoformat(),
                "attempts": p.attempts, "reason": p.reason, "source": p.source, "position": p.where,
                "message": p.message if p.message is not None else p.raw.decode("utf-8", "replace")}

    def deliver(self, batch: list[Pending], dead_letter: bool = True) -> list[Pending] | None:
        """Deliver until every item is settled; returns the items that failed for good (already
        dead-lettered when `dead_letter`), or None when stopped before the batch was settled."""
        failed: list[Pending] = [p for p in batch if p.item is None]
        todo = [p for p in batch if p.item is not None]
        opts = self.route.options
        rounds = 0
        while todo:
            self.head_received = min((p.received for p in todo if p.received), default=None)
            try:
                outcomes: list[Outcome | None] = self.destination.send([p.item for p in todo])
                transient = None
            except Transient as exc:
                transient = exc
                outcomes = exc.done or [None] * len(todo)
            if len(outcomes) != len(todo):  # a destination client bug: never lose items silently
                raise RuntimeError(f"{type(self.destination).__name__} answered {len(outcomes)} outcomes "
                                   f"for {len(todo)} items")
            now = time.time()
            retry: list[Pending] = []
            refused = False
            for p, outcome in zip(todo, outcomes):
                if outcome is None:
                    if transient is not None:
                        p.attempts += 1
                        p.first_failure = p.first_failure or now
                        p.reason = f"the destination is unavailable: {transient.reason}"
                        self.counts["failed"] += 1
                        if p.attempts >= opts.max_attempts and now - p.first_failure >= opts.retry_window_seconds:
                            failed.append(p)
                            continue
                    retry.append(p)
                elif outcome.status == "rejected":
                    p.attempts += 1
                    p.reason = outcome.reason
                    self.counts["failed"] += 1
                    refused = True
                    (failed if p.attempts >= opts.max_attempts else retry).append(p)
                else:
                    key = {"ok": "delivered", "duplicate": "duplicates"}.get(outcome.status, "skipped")
                    self.counts[key] += 1
                    if outcome.status in ("ok", "duplicate") and p.received is not None:
                        self.latencies.append(now - p.received)
            todo = retry
            self.on_progress()
            if todo and (transient is not None or refused):
                rounds += 1
                delay = transient.retry_after if transient is not None and transient.retry_after else None
                delay = delay if delay is not None else min(MAX_BACKOFF, 0.25 * 2 ** min(rounds, 8))
                if transient is not None:
                    log.warning("route %s: %s; retrying %d message(s) in %.1f s", self.route.name,
                                transient.reason, len(todo), delay)
                if self._sleep(delay * random.uniform(0.8, 1.2)):
                    return None
            elif todo and self.stop.is_set():
                return None
        self.head_received = None
        if dead_letter and failed:
            self.dead_letters.add([self._dead_entry(p) for p in failed])
            self.counts["dead_lettered"] += len(failed)
            for p in failed:
                log.error("route %s: dead-lettered a message after %d attempt(s): %s", self.route.name,
                          p.attempts, p.reason)
        return failed

    def latency_summary(self) -> dict[str, float | None]:
        """p50/p95 of acknowledgement-to-acceptance seconds over the last deliveries."""
        values = sorted(self.latencies)
        if not values:
            return {"latency_p50_seconds": None, "latency_p95_seconds": None}
        pick = lambda q: round(values[min(len(values) - 1, int(q * len(values)))], 3)  # noqa: E731
        return {"latency_p50_seconds": pick(0.5), "latency_p95_seconds": pick(0.95)}


class RouteWorker(threading.Thread):
    """The live loop of one route: read what is new, deliver it, advance the cursor."""

    def __init__(self, route: Route, events_root: Path, state: StateStore, identities: IdentityBook,
                 stop: threading.Event, destination: Destination | None = None):
        super().__init__(name=f"route-{route.name}", daemon=True)
        self.route, self.root, self.state, self.stop = route, Path(events_root), state, stop
        saved = state.route(route.name)
        self.cursor = (tail.Cursor.from_json(saved["cursor"]) if saved.get("cursor")
                       else tail.Cursor(tail.start_date(route.options.start)))
        self.pipeline = Pipeline(route, destination or build_destination(route, stop), DeadLetters(route.name,
                                 state.directory), identities, stop)
        for key in COUNTS:
            self.pipeline.counts[key] = int((saved.get("counts") or {}).get(key, 0))
        self.pipeline.on_progress = self.publish
        self.backlog_bytes = 0
        self._carry: dict[str, list[tuple[float, tail.Line, Any]]] = {}
        self.oldest_unread: float | None = None  # receivedAt of the oldest line read but not yet taken
        self._compacted_at = 0.0
        self.error: BaseException | None = None

    def publish(self) -> None:
        """Put this route's cursor, counts, lag and backlog into the state (saved by the saver)."""
        head = self.pipeline.head_received
        if head is None and self.backlog_bytes > 0:
            head = self.oldest_unread
        self.state.update(self.route.name, cursor=self.cursor.to_json(), counts=dict(self.pipeline.counts),
                          lag_seconds=round(max(0.0, time.time() - head), 3) if head else 0.0,
                          backlog_bytes=self.backlog_bytes, destination=self.route.destination,
                          object=self.route.object, max_lag_seconds=self.route.options.max_lag_seconds,
                          sources=self.route.sources, **self.pipeline.latency_summary())

    def _next_batch(self) -> tuple[list[tuple[tail.Line, Pending | None]], list[tail.FileState]]:
        """What is new in every file, merged in received order (each file's own order kept), up to
        `batch_size` matched messages. Several collector workers write several files at once: an
        `identify` in one may name the person of a quote request in another, so a route that learns
        identities learns from everything read before it transforms anything."""
        files = tail.scan(self.root, self.route.sources, self.cursor.since)
        self.backlog_bytes = sum(max(0, f.size - self.cursor.files.get(f.key, 0)) for f in files)
        queues: list[list[tuple[float, tail.Line, Any]]] = []
        carried, self._carry = self._carry, {}
        learn = self.route.options.learn_identities and self.pipeline.identities is not None
        unread = [f for f in files if f.size > self.cursor.files.get(f.key, 0)][:MERGE_FILES]
        for f in unread:
            offset = self.cursor.files.get(f.key, 0)
            # Lines read but not taken last time are not read and parsed again.
            kept = carried.get(f.key) or []
            if kept and kept[0][1].start != offset:
                kept = []
            read_from = kept[-1][1].end if kept else offset
            fresh = []
            # Read more only when what is kept is running low: a backlog stays in the file, not in memory.
            wanted = f.size > read_from and (kept[-1][1].end - kept[0][1].start if kept else 0) < tail.READ_CHUNK // 2
            for line in (tail.read_lines(f, read_from) if wanted else []):
                try:
                    message: Any = orjson.loads(line.raw)
                except orjson.JSONDecodeError:
                    message = None
                received = _received_epoch(message) if isinstance(message, dict) else None
                fresh.append((received or 0.0, line, message))
                if learn and isinstance(message, dict):
                    self.pipeline.identities.learn(message)
            if kept or fresh:
                queues.append(kept + fresh)
        position = [0] * len(queues)
        heads = [(q[0][0], i) for i, q in enumerate(queues)]
        heapq.heapify(heads)
        taken: list[tuple[tail.Line, Pending | None]] = []
        matched = 0
        while heads and matched < self.route.options.batch_size:
            _, i = heapq.heappop(heads)
            _, line, message = queues[i][position[i]]
            position[i] += 1
            pending = self.pipeline.prepare(line.source, line.raw, f"{line.key}@{line.start}",
                                            message=message, learn=False)
            taken.append((line, pending))
            matched += pending is not None
            if position[i] < len(queues[i]):
                heapq.heappush(heads, (queues[i][position[i]][0], i))
        for i, queue in enumerate(queues):
            if position[i] < len(queue):
                self._carry[queue[0][1].key] = queue[position[i]:]
        self.oldest_unread = min((q[0][0] for q in self._carry.values() if q[0][0]), default=self.oldest_unread)
        return taken, files

    def run(self) -> None:
        try:
            self._loop()
        except BaseException as exc:  # the route stops; the state says so and the others go on
            self.error = exc
            log.exception("route %s stopped", self.route.name)
            self.state.update(self.route.name, error=f"{type(exc).__name__}: {exc}")

    def _loop(self) -> None:
        self.publish()
        poll = POLL_SECONDS
        while not self.stop.is_set():
            taken, files = self._next_batch()
            if time.monotonic() - self._compacted_at > 10:
                self._compacted_at = time.monotonic()
                tail.compact(self.cursor, files)
            if not taken:
                self.publish()
                self.stop.wait(poll)
                poll = min(IDLE_POLL_SECONDS, poll * 1.5)
                continue
            poll = POLL_SECONDS
            batch = [p for _, p in taken if p is not None]
            if batch and self.pipeline.deliver(batch) is None:
                return  # stopping mid-batch: the cursor stays before it
            for line, _ in taken:
                self.cursor.files[line.key] = max(self.cursor.files.get(line.key, 0), line.end)
            self.backlog_bytes = max(0, self.backlog_bytes - sum(line.end - line.start for line, _ in taken))
            self.publish()


class Router:
    """Every route's worker, and the thread that saves the state file."""

    def __init__(self, routes: list[Route], events_root: Path | None = None, state_dir: Path | None = None,
                 save_every: float = 0.5):
        self.stop = threading.Event()
        self.state = StateStore(state_dir)
        self.identities = IdentityBook(self.state.directory)
        root = events_root or config.events_dir()
        self.workers = [RouteWorker(r, root, self.state, self.identities, self.stop) for r in routes]
        self.save_every = save_every
        self.state.retire_others({r.name for r in routes})

    def run(self) -> None:
        """Run until `stop` is set (SIGTERM/SIGINT in the command); saves the state on the way out."""
        for w in self.workers:
            w.start()
        try:
            while not self.stop.wait(self.save_every):
                self.state.save(heartbeat_every=HEARTBEAT_SECONDS)
        finally:
            self.stop.set()
            for w in self.workers:
                w.join(timeout=35)
            for w in self.workers:
                w.publish()
            self.state.save()


def replay(route: Route, start: str, end: str | None, events_root: Path | None = None,
           state_dir: Path | None = None, stop: threading.Event | None = None) -> dict[str, int]:
    """Re-send a route's messages received on dates start..end (inclusive) with the same dedup
    keys; the live cursor is untouched. Returns the counts of this replay."""
    stop = stop or threading.Event()
    directory = state_dir or StateStore(state_dir).directory
    pipeline = Pipeline(route, build_destination(route, stop), DeadLetters(route.name, directory),
                        IdentityBook(directory), stop)
    root = events_root or config.events_dir()
    batch: list[Pending] = []
    for f in tail.scan(root, route.sources, start, end):
        offset = 0
        while True:
            lines = tail.read_lines(f, offset)
            if not lines:
                break
            for line in lines:
                pending = pipeline.prepare(line.source, line.raw, f"{line.key}@{line.start}")
                if pending is not None:
                    batch.append(pending)
                    if len(batch) >= route.options.batch_size:
                        if pipeline.deliver(batch) is None:
                            return pipeline.counts
                        batch = []
            offset = lines[-1].end
    if batch:
        pipeline.deliver(batch)
    return pipeline.counts


def redrive(route: Route, state_dir: Path | None = None, stop: threading.Event | None = None) -> dict[str, int]:
    """Send a route's dead letters again; those that fail again stay, with the new reason."""
    stop = stop or threading.Event()
    directory = state_dir or StateStore(state_dir).directory
    dead = DeadLetters(route.name, directory)
    pipeline = Pipeline(route, build_destination(route, stop), dead, IdentityBook(directory), stop)
    with dead.rewriting() as entries:
        keep: list[dict[str, Any]] = []
        batch: list[tuple[dict[str, Any], Pending]] = []

        def flush() -> None:
            failed = pipeline.deliver([p for _, p in batch], dead_letter=False)
            failed_ids = {id(p) for p in (failed if failed is not None else [p for _, p in batch])}
            for entry, p in batch:
                if id(p) in failed_ids:
                    keep.append({**entry, "attempts": int(entry.get("attempts", 0)) + p.attempts,
                                 "reason": p.reason, "failed_at": dt.datetime.now(dt.timezone.utc).isoformat()})
            batch.clear()

        for entry in entries:
            message = entry.get("message")
            raw = orjson.dumps(message) if isinstance(message, dict) else str(message).encode()
            pending = pipeline.prepare(entry.get("source", ""), raw, entry.get("position", ""))
            if pending is None:
                continue  # the route no longer wants it (filter or transformation changed)
            batch.append((entry, pending))
            if len(batch) >= route.options.batch_size:
                flush()
        if batch:
            flush()
        entries[:] = keep
    pipeline.counts["still_dead"] = len(keep)
    return pipeline.counts


def find_route(routes: Iterable[Route], name: str) -> Route:
    """The route called `name`; raises KeyError with the names there are."""
    for r in routes:
        if r.name == name:
            return r
    raise KeyError(f"no route named {name!r}; the routes file has {', '.join(r.name for r in routes)}.")
