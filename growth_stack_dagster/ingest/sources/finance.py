"""Finance exports as a dlt source, from a drop folder: SKU unit-cost CSV files (`sku_costs_*.csv`,
columns `sku,unit_cost,currency,effective_date`) and exchange-rate CSV files (`exchange_rates_*.csv`,
columns `base_currency,quote_currency,rate,effective_date`: one `base_currency` is worth `rate`
`quote_currency` from `effective_date` on).

A file is read when it is new or changed since the last complete load (file names and
modification times kept in dlt resource state). Good rows merge into `sku_costs` on
(sku, effective_date) and `exchange_rates` on (base_currency, quote_currency, effective_date), the
latest file winning; every row that cannot be stored goes to
`discards` with the file, line, raw values and the reason, so nothing is silently dropped.
"""

from __future__ import annotations

import csv
import dataclasses
import re
from collections.abc import Iterator
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import dlt

FILE_GLOB = "sku_costs_*.csv"
COLUMNS = ("sku", "unit_cost", "currency", "effective_date")
RATES_GLOB = "exchange_rates_*.csv"
RATE_COLUMNS = ("base_currency", "quote_currency", "rate", "effective_date")
CURRENCY = re.compile(r"^[A-Za-z]{3}$")


@dataclasses.dataclass
class ParsedFile:
    rows: list[dict[str, Any]]
    discards: list[dict[str, Any]]


def validate_row(raw: dict[str, str | None]) -> tuple[dict[str, Any] | None, str | None]:
    """(typed row, None) for a valid CSV record, or (None, reason) saying what is wrong."""
    sku = (raw.get("sku") or "").strip()
    if not sku:
        return None, "sku is empty"
    cost_text = (raw.get("unit_cost") or "").strip()
    try:
        cost = Decimal(cost_text)
    except InvalidOperation:
        return None, f"unit_cost {cost_text!r} is not a number"
    if not cost.is_finite() or cost < 0:
        return None, f"unit_cost {cost_text!r} is not a finite, non-negative amount"
    currency = (raw.get("currency") or "").strip()
    if not CURRENCY.match(currency):
        return None, f"currency {currency!r} is not a three-letter ISO 4217 code"
    day_text = (raw.get("effective_date") or "").strip()
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        return None, f"effective_date {day_text!r} is not a YYYY-MM-DD date"
    return {"sku": sku, "unit_cost": cost, "currency": currency.upper(), "effective_date": day}, None


def validate_rate_row(raw: dict[str, str | None]) -> tuple[dict[str, Any] | None, str | None]:
    """(typed row, None) for a valid exchange-rate record, or (None, reason) saying what is wrong."""
    codes = {}
    for column in ("base_currency", "quote_currency"):
        code = (raw.get(column) or "").strip()
        if not CURRENCY.match(code):
            return None, f"{column} {code!r} is not a three-letter ISO 4217 code"
        codes[column] = code.upper()
    if codes["base_currency"] == codes["quote_currency"]:
        return None, f"base_currency and quote_currency are both {codes['base_currency']}"
    rate_text = (raw.get("rate") or "").strip()
    try:
        rate = Decimal(rate_text)
    except InvalidOperation:
        return None, f"rate {rate_text!r} is not a number"
    if not rate.is_finite() or rate <= 0:
        return None, f"rate {rate_text!r} is not a finite, positive number"
    day_text = (raw.get("effective_date") or "").strip()
    try:
        day = date.fromisoformat(day_text)
    except ValueError:
        return None, f"effective_date {day_text!r} is not a YYYY-MM-DD date"
    return {**codes, "rate": rate, "effective_date": day}, None


def parse_sku_cost_file(path: Path) -> ParsedFile:
    """Split one SKU cost export into typed rows and discards (see `parse_export`)."""
    return parse_export(path, COLUMNS, validate_row)


def parse_rate_file(path: Path) -> ParsedFile:
    """Split one exchange-rate export into typed rows and discards (see `parse_export`)."""
    return parse_export(path, RATE_COLUMNS, validate_rate_row)


def parse_any_export(path: Path) -> ParsedFile:
    """Parse an export of either kind, by its file name."""
    return parse_rate_file(path) if path.match(RATES_GLOB) else parse_sku_cost_file(path)


def parse_export(path: Path, columns: tuple[str, ...], validate) -> ParsedFile:
    """Split one export into typed rows and discards; each carries `source_file`, `line_number`
    and `file_modified_at`. A file without the expected header is one discard (line 1)."""
    modified = datetime.fromtimestamp(path.stat().st_mtime, timezone.utc)
    origin = {"source_file": path.name, "file_modified_at": modified}
    rows, discards = [], []
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        header = [h.strip() for h in next(reader, [])]
        missing = [c for c in columns if c not in header]
        if missing:
            discards.append({**origin, "line_number": 1, "raw": ",".join(header),
                             "reason": f"header lacks column(s) {', '.join(missing)}; expected {','.join(columns)}"})
            return ParsedFile(rows, discards)
        for values in reader:
            line = reader.line_num
            if not any(v.strip() for v in values):
                continue  # blank line
            if len(values) != len(header):
                typed, reason = None, f"{len(values)} values where the header has {len(header)} columns"
            else:
                typed, reason = validate(dict(zip(header, values)))
            if typed is None:
                discards.append({**origin, "line_number": line, "raw": ",".join(values), "reason": reason})
            else:
                rows.append({**typed, **origin, "line_number": line})
    return ParsedFile(rows, discards)


def changed_files(drop_dir: Path, seen: dict[str, int], pattern: str = FILE_GLOB) -> list[Path]:
    """Exports in `drop_dir` matching `pattern` that are new or whose modification time differs from
    `seen`, oldest first."""
    if not drop_dir.is_dir():
        return []
    files = [p for p in drop_dir.glob(pattern) if p.is_file() and seen.get(p.name) != p.stat().st_mtime_ns]
    return sorted(files, key=lambda p: (p.stat().st_mtime_ns, p.name))


def _file_resource(name: str, drop_dir: Path, pick: str, pattern: str = FILE_GLOB, parse=parse_sku_cost_file,
                   **hints: Any):
    """A merge resource of `pick` ("rows") from the exports that are new or changed since the last run."""
    @dlt.resource(name=name, write_disposition="merge", **hints)
    def from_files() -> Iterator[list[dict[str, Any]]]:
        state = dlt.current.resource_state()
        seen: dict[str, int] = state.setdefault("seen_files", {})
        for path in changed_files(drop_dir, seen, pattern):
            mtime = path.stat().st_mtime_ns
            items = getattr(parse(path), pick)
            if items:
                yield items
            seen[path.name] = mtime

    return from_files


@dlt.source(name="finance", section="finance")
def finance_source(drop_dir: str = dlt.config.value) -> Any:
    """SKU unit costs and exchange rates from the CSV exports in `drop_dir`.
    Tables: sku_costs, exchange_rates, discards."""
    folder = Path(drop_dir)
    sku_costs = _file_resource(
        "sku_costs", folder, "rows", primary_key=("sku", "effective_date"),
        columns={"unit_cost": {"data_type": "decimal", "precision": 18, "scale": 6},
                 "effective_date": {"data_type": "date"},
                 "file_modified_at": {"data_type": "timestamp", "dedup_sort": "desc"}},
    )
    exchange_rates = _file_resource(
        "exchange_rates", folder, "rows", RATES_GLOB, parse_rate_file,
        primary_key=("base_currency", "quote_currency", "effective_date"),
        columns={"rate": {"data_type": "decimal", "precision": 28, "scale": 12},
                 "effective_date": {"data_type": "date"},
                 "file_modified_at": {"data_type": "timestamp", "dedup_sort": "desc"}},
    )
    # Replaced on every run from the exports now in the folder, so a file that is fixed and dropped
    # again under the same name loses its old discards (a merge could never delete them).
    @dlt.resource(name="discards", write_disposition="replace",
                  columns={"file_modified_at": {"data_type": "timestamp"}, "line_number": {"data_type": "bigint"}})
    def discards() -> Iterator[list[dict[str, Any]]]:
        files = sorted(p for pattern in (FILE_GLOB, RATES_GLOB) for p in folder.glob(pattern)
                       if p.is_file()) if folder.is_dir() else []
        yield [d for path in files for d in parse_any_export(path).discards]

    return [sku_costs, exchange_rates, discards]
