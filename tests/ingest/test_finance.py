"""Finance SKU-cost exports: good rows load, bad values go to discards with their reason, reruns add nothing."""

from __future__ import annotations

import os
from datetime import date
from decimal import Decimal
from pathlib import Path

from growth_stack_dagster.ingest.sources.finance import parse_sku_cost_file, validate_row
from tests.ingest.conftest import load, warehouse

GOOD_AND_BAD = (
    "sku,unit_cost,currency,effective_date\n"
    "SKU1,4.20,usd,2026-01-01\n"
    "SKU2,7.5,USD,2026-01-01\n"
    "SKU3,abc,USD,2026-01-01\n"       # not a number
    ",1.00,USD,2026-01-01\n"          # empty sku
    "SKU4,-1,USD,2026-01-01\n"        # negative
    "SKU5,1.00,dollars,2026-01-01\n"  # not ISO 4217
    "SKU6,1.00,USD,01/02/2026\n"      # not ISO date
    "SKU7,1.00,USD\n"                 # missing value
    "\n"
)


def test_validate_row_says_what_is_wrong() -> None:
    assert validate_row({"sku": " SKU1 ", "unit_cost": "1.5", "currency": "eur", "effective_date": "2026-02-03"})[0] == {
        "sku": "SKU1", "unit_cost": Decimal("1.5"), "currency": "EUR",
        "effective_date": date(2026, 2, 3)}
    assert validate_row({"sku": "A", "unit_cost": "NaN", "currency": "USD", "effective_date": "2026-01-01"})[1] == (
        "unit_cost 'NaN' is not a finite, non-negative amount")
    assert validate_row({"sku": "A", "unit_cost": "1", "currency": "US", "effective_date": "2026-01-01"})[1] == (
        "currency 'US' is not a three-letter ISO 4217 code")


def test_parse_splits_rows_and_discards(tmp_path: Path) -> None:
    path = tmp_path / "sku_costs_2026-01-01.csv"
    path.write_text(GOOD_AND_BAD)
    parsed = parse_sku_cost_file(path)
    assert [r["sku"] for r in parsed.rows] == ["SKU1", "SKU2"]
    assert [(d["line_number"], d["reason"]) for d in parsed.discards] == [
        (4, "unit_cost 'abc' is not a number"),
        (5, "sku is empty"),
        (6, "unit_cost '-1' is not a finite, non-negative amount"),
        (7, "currency 'dollars' is not a three-letter ISO 4217 code"),
        (8, "effective_date '01/02/2026' is not a YYYY-MM-DD date"),
        (9, "3 values where the header has 4 columns"),
    ]
    assert parsed.discards[0]["raw"] == "SKU3,abc,USD,2026-01-01"
    bad_header = tmp_path / "sku_costs_bad.csv"
    bad_header.write_text("sku,cost\nA,1\n")
    assert parse_sku_cost_file(bad_header).discards[0]["reason"].startswith("header lacks column(s) unit_cost, currency")


def test_exports_load_once_and_new_files_arrive(finance_drop: Path) -> None:
    (finance_drop / "sku_costs_2026-01-01.csv").write_text(GOOD_AND_BAD)
    (finance_drop / "notes.txt").write_text("not an export")
    assert load("finance") == {"sku_costs": 2, "discards": 6}
    # a rerun adds no cost row; the discards table is restated (replaced), not appended to
    assert load("finance") == {"discards": 6}

    later = finance_drop / "sku_costs_2026-01-02.csv"
    later.write_text("sku,unit_cost,currency,effective_date\nSKU1,4.50,USD,2026-01-01\nSKU9,9,USD,2026-01-02\n")
    stamp = os.stat(later).st_mtime + 5
    os.utime(later, (stamp, stamp))
    assert load("finance") == {"sku_costs": 2, "discards": 6}
    with warehouse() as con:
        rows = con.execute("select sku, unit_cost, currency, effective_date::varchar, source_file "
                           "from finance.sku_costs order by sku, effective_date").fetchall()
        discards = con.execute("select count(*) from finance.discards").fetchone()[0]
    # the later export restates SKU1's cost for the same day: it replaces the earlier row
    assert rows == [
        ("SKU1", Decimal("4.500000"), "USD", "2026-01-01", "sku_costs_2026-01-02.csv"),
        ("SKU2", Decimal("7.500000"), "USD", "2026-01-01", "sku_costs_2026-01-01.csv"),
        ("SKU9", Decimal("9.000000"), "USD", "2026-01-02", "sku_costs_2026-01-02.csv"),
    ]
    assert discards == 6


def test_a_fixed_export_loses_its_discards(finance_drop: Path) -> None:
    export = finance_drop / "sku_costs_2026-01-01.csv"
    export.write_text(GOOD_AND_BAD)
    load("finance")
    export.write_text("sku,unit_cost,currency,effective_date\nSKU1,4.20,USD,2026-01-01\nSKU3,3.00,USD,2026-01-01\n")
    stamp = os.stat(export).st_mtime + 5
    os.utime(export, (stamp, stamp))
    load("finance")
    with warehouse() as con:
        discards = con.execute("select count(*) from finance.discards").fetchone()[0]
        skus = [r[0] for r in con.execute("select sku from finance.sku_costs order by sku").fetchall()]
    assert discards == 0
    assert skus == ["SKU1", "SKU2", "SKU3"]
