"""Finance exchange-rate exports: good rows load beside the SKU costs, bad ones go to discards with
their reason, and the finance drop sensor sees the new kind of file."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path

from growth_stack_dagster.ingest.sensors import new_finance_exports
from growth_stack_dagster.ingest.sources.finance import parse_rate_file, validate_rate_row
from tests.ingest.conftest import load, warehouse

RATES = (
    "base_currency,quote_currency,rate,effective_date\n"
    "usd,JPY,156.20,2026-03-01\n"
    "KWD,USD,3.2512,2026-03-01\n"
    "EUR,EUR,1,2026-03-01\n"          # same currency
    "USD,dollars,150,2026-03-01\n"    # not ISO 4217
    "USD,GBP,0,2026-03-01\n"          # not positive
    "USD,CHF,abc,2026-03-01\n"        # not a number
    "USD,CAD,1.37,March 1\n"          # not a date
)


def test_validate_rate_row_says_what_is_wrong() -> None:
    assert validate_rate_row({"base_currency": " eur", "quote_currency": "usd", "rate": "1.0834",
                              "effective_date": "2026-03-01"})[0] == {
        "base_currency": "EUR", "quote_currency": "USD", "rate": Decimal("1.0834"), "effective_date": date(2026, 3, 1)}
    assert validate_rate_row({"base_currency": "USD", "quote_currency": "JPY", "rate": "-1",
                              "effective_date": "2026-03-01"})[1] == "rate '-1' is not a finite, positive number"


def test_rate_files_load_and_bad_lines_are_discarded(finance_drop: Path) -> None:
    (finance_drop / "exchange_rates_2026-03-01.csv").write_text(RATES)
    parsed = parse_rate_file(finance_drop / "exchange_rates_2026-03-01.csv")
    assert [(d["line_number"], d["reason"]) for d in parsed.discards] == [
        (4, "base_currency and quote_currency are both EUR"),
        (5, "quote_currency 'dollars' is not a three-letter ISO 4217 code"),
        (6, "rate '0' is not a finite, positive number"),
        (7, "rate 'abc' is not a number"),
        (8, "effective_date 'March 1' is not a YYYY-MM-DD date"),
    ]
    names, cursor = new_finance_exports(finance_drop, None)
    assert names == ["exchange_rates_2026-03-01.csv"]
    assert new_finance_exports(finance_drop, cursor)[0] == []
    assert load("finance") == {"exchange_rates": 2, "discards": 5}
    with warehouse() as con:
        rows = con.execute("select base_currency, quote_currency, rate, effective_date::varchar from "
                           "finance.exchange_rates order by 1").fetchall()
    assert rows == [("KWD", "USD", Decimal("3.251200000000"), "2026-03-01"),
                    ("USD", "JPY", Decimal("156.200000000000"), "2026-03-01")]
    assert load("finance") == {"discards": 5}  # a rerun adds no rate row
