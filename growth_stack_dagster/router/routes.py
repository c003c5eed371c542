"""The routes file: what each route reads, how it transforms it and where it delivers it.

A route is declared in YAML (see `routes.yaml` beside this module, the repository's routes):

    - name: customerio_email_to_amplitude
      filter:                       # every key optional; all given keys must hold
        source: customerio          # one source name or a list
        type: webhook               # message type(s): track, page, identify, webhook, ...
        event: [Request a Quote]    # track event names (page/screen: their name)
        where:                      # property conditions on dotted paths ("body." reads a webhook's body)
          - {field: body.metric, in: [delivered, opened, clicked]}
        any: [<filter>, ...]        # alternatives: at least one must hold
      destination: amplitude        # amplitude | hubspot | webhook
      object: events                # what the destination creates (events, notes, deliveries)
      transform: customerio_email_to_amplitude   # a function in router/transforms.py
      options: {batch_size: 100, requests_per_second: 100, events_per_second: 1000,
                max_attempts: 5, retry_window_seconds: 3600, max_lag_seconds: 60}

Conditions: `equals`, `not_equals`, `in`, `not_in`, `exists` (true/false), `starts_with`, `contains`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import orjson
import yaml

DEFAULT_ROUTES_FILE = Path(__file__).with_name("routes.yaml")
DESTINATIONS = ("amplitude", "hubspot", "webhook")
_OPERATORS = ("equals", "not_equals", "in", "not_in", "exists", "starts_with", "contains")
_MISSING = object()


class RoutesError(ValueError):
    """The routes file is not valid; the message says which route and what to change."""


@dataclasses.dataclass(frozen=True)
class Options:
    """Delivery options of one route."""

    batch_size: int = 100
    requests_per_second: float = 10.0
    events_per_second: float | None = None
    max_attempts: int = 5
    retry_window_seconds: float = 3600.0
    max_lag_seconds: float = 60.0
    learn_identities: bool = False
    start: str = "today"  # where a route without a cursor begins: "today" (UTC) or "beginning"


@dataclasses.dataclass(frozen=True)
class Route:
    """One declared route."""

    name: str
    filter: dict[str, Any]
    destination: str
    object: str
    transform: str
    options: Options
    settings: dict[str, Any] = dataclasses.field(default_factory=dict)

    @property
    def sources(self) -> list[str] | None:
        """The sources this route may read (None: every source)."""
        return filter_sources(self.filter)


def _as_list(value: Any) -> list[Any]:
    return list(value) if isinstance(value, (list, tuple)) else [value]


def filter_sources(flt: Mapping[str, Any]) -> list[str] | None:
    """Every source a filter can match, or None when some branch matches any source."""
    if "source" in flt:
        return [str(s) for s in _as_list(flt["source"])]
    if flt.get("any"):
        found: list[str] = []
        for branch in flt["any"]:
            sub = filter_sources(branch)
            if sub is None:
                return None
            found += [s for s in sub if s not in found]
        return found
    return None


def lookup(message: dict[str, Any], path: str) -> Any:
    """The value at a dotted `path` of a message; `body.` paths read a webhook's parsed body."""
    parts = path.split(".")
    value: Any = message
    if parts[0] == "body" and isinstance(message.get("body"), str):
        value = webhook_body(message)
        parts = parts[1:]
    for part in parts:
        if not isinstance(value, dict) or part not in value:
            return _MISSING
        value = value[part]
    return value


def webhook_body(message: dict[str, Any]) -> Any:
    """A webhook envelope's body, parsed once and cached on the message (None if not JSON)."""
    if "_parsed_body" not in message:
        try:
            message["_parsed_body"] = orjson.loads(message.get("body") or "")
        except orjson.JSONDecodeError:
            message["_parsed_body"] = None
    return message["_parsed_body"]


def _condition_holds(message: dict[str, Any], cond: Mapping[str, Any]) -> bool:
    value = lookup(message, str(cond["field"]))
    for op in _OPERATORS:
        if op not in cond:
            continue
        expected = cond[op]
        if op == "exists":
            ok = (value is not _MISSING and value is not None) == bool(expected)
        elif value is _MISSING:
            ok = op in ("not_equals", "not_in")
        elif op == "equals":
            ok = value == expected
        elif op == "not_equals":
            ok = value != expected
        elif op == "in":
            ok = value in _as_list(expected)
        elif op == "not_in":
            ok = value not in _as_list(expected)
        elif op == "starts_with":
            ok = isinstance(value, str) and value.startswith(str(expected))
        else:
            ok = isinstance(value, str) and str(expected) in value
        if not ok:
            return False
    return True


def matches(flt: Mapping[str, Any], source: str, message: dict[str, Any]) -> bool:
    """True when `message` read from `source` passes the filter `flt`."""
    if "source" in flt and source not in _as_list(flt["source"]):
        return False
    if "type" in flt and message.get("type") not in _as_list(flt["type"]):
        return False
    if "event" in flt:
        name = message.get("event") if message.get("type") == "track" else message.get("name")
        if name not in _as_list(flt["event"]):
            return False
    for cond in flt.get("where") or ():
        if not _condition_holds(message, cond):
            return False
    if flt.get("any"):
        return any(matches(branch, source, message) for branch in flt["any"])
    return True


def _check_filter(where: str, flt: Any) -> None:
    if not isinstance(flt, dict):
        raise RoutesError(f"{where}: filter must be a mapping of source/type/event/where/any.")
    unknown = set(flt) - {"source", "type", "event", "where", "any"}
    if unknown:
        raise RoutesError(f"{where}: unknown filter keys {sorted(unknown)}; use source, type, event, where, any.")
    for cond in flt.get("where") or ():
        if not isinstance(cond, dict) or "field" not in cond:
            raise RoutesError(f"{where}: every where condition needs a field, e.g. {{field: body.metric, in: [opened]}}.")
        ops = set(cond) - {"field"}
        if not ops or ops - set(_OPERATORS):
            raise RoutesError(f"{where}: condition on {cond['field']!r} must use one of {list(_OPERATORS)}.")
    for branch in flt.get("any") or ():
        _check_filter(where, branch)


def parse_routes(data: Any, transforms: Mapping[str, Callable] | None = None) -> list[Route]:
    """Validate the parsed YAML document and return its routes; raises RoutesError."""
    if transforms is None:
        from growth_stack_dagster.router.transforms import TRANSFORMS as transforms
    if not isinstance(data, dict) or not isinstance(data.get("routes"), list):
        raise RoutesError("the routes file must hold `routes:` followed by a list of routes.")
    routes: list[Route] = []
    seen: set[str] = set()
    option_fields = {f.name for f in dataclasses.fields(Options)}
    for i, raw in enumerate(data["routes"]):
        if not isinstance(raw, dict) or not raw.get("name"):
            raise RoutesError(f"route #{i + 1} has no name.")
        name = str(raw["name"])
        where = f"route {name!r}"
        if name in seen:
            raise RoutesError(f"{where} is declared twice; route names must be unique.")
        seen.add(name)
        if not name.replace("_", "").replace("-", "").isalnum():
            raise RoutesError(f"{where}: a name may hold letters, digits, '_' and '-' only.")
        _check_filter(where, raw.get("filter") or {})
        if raw.get("destination") not in DESTINATIONS:
            raise RoutesError(f"{where}: destination must be one of {list(DESTINATIONS)}.")
        if raw.get("transform") not in transforms:
            raise RoutesError(f"{where}: transform {raw.get('transform')!r} is not a function in "
                              f"router/transforms.py; one of {sorted(transforms)}.")
        opts = raw.get("options") or {}
        unknown = set(opts) - option_fields
        if unknown:
            raise RoutesError(f"{where}: unknown options {sorted(unknown)}; allowed: {sorted(option_fields)}.")
        try:
            options = Options(**opts)
        except TypeError as exc:
            raise RoutesError(f"{where}: {exc}") from None
        if options.batch_size < 1 or options.requests_per_second <= 0 or options.max_attempts < 1:
            raise RoutesError(f"{where}: batch_size, requests_per_second and max_attempts must be positive.")
        if options.events_per_second is not None and options.events_per_second < options.batch_size:
            raise RoutesError(f"{where}: events_per_second must be at least batch_size.")
        if options.start not in ("today", "beginning"):
            raise RoutesError(f"{where}: start must be 'today' or 'beginning'.")
        routes.append(Route(name=name, filter=dict(raw.get("filter") or {}), destination=raw["destination"],
                            object=str(raw.get("object") or ""), transform=raw["transform"], options=options,
                            settings=dict(raw.get("settings") or {})))
    return routes


def load_routes(path: Path | str | None = None) -> list[Route]:
    """Read and validate a routes file (default: the repository's `router/routes.yaml`)."""
    path = Path(path) if path else DEFAULT_ROUTES_FILE
    try:
        data = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise RoutesError(f"no routes file at {path}; pass --routes PATH or set GROWTH_STACK_ROUTES.") from None
    except yaml.YAMLError as exc:
        raise RoutesError(f"{path} is not valid YAML: {exc}") from None
    return parse_routes(data)
