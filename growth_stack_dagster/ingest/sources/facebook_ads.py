"""Facebook Marketing API (Graph API) as a dlt source: campaigns and daily campaign insights
(spend, impressions, clicks) of one ad account.

Insights are requested at `level=campaign` with `time_increment=1` (one row per campaign per day),
for `time_range` since the last loaded day minus the attribution window (Facebook restates recent
days as late conversions arrive), until today; rows merge on (campaign_id, date_start).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, datetime, timezone
from typing import Any

import dlt
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator

from requests import Response

from growth_stack_dagster.ingest.sources.http import rest_client

CAMPAIGN_FIELDS = ("id", "account_id", "name", "status", "effective_status", "objective",
                   "created_time", "updated_time", "start_time", "stop_time", "daily_budget", "lifetime_budget")
INSIGHT_FIELDS = ("account_id", "campaign_id", "campaign_name", "date_start", "date_stop",
                  "spend", "impressions", "clicks")


def insight_row(row: dict[str, Any]) -> dict[str, Any]:
    """An insights row with `date_start`/`date_stop` as dates (the cursor) and the metrics, which
    the API sends as decimal strings, as numbers."""
    out = dict(row)
    for key in ("date_start", "date_stop"):
        if out.get(key):
            out[key] = date.fromisoformat(out[key])
    if out.get("spend") is not None:
        out["spend"] = float(out["spend"])
    for key in ("impressions", "clicks"):
        if out.get(key) is not None:
            out[key] = int(out[key])
    return out


# Graph API throttling codes (app, user, ad-account and Business Use Case limits), sent as HTTP 400.
THROTTLING_CODES = frozenset({4, 17, 32, 613, *range(80000, 80015)})


def is_transient_graph_error(response: Response | None, exception: BaseException | None) -> bool:
    """True for a Graph error response worth retrying: throttling codes or `is_transient: true`."""
    if response is None or response.status_code < 400:
        return False
    try:
        error = response.json().get("error") or {}
    except ValueError:
        return False
    return bool(error.get("is_transient")) or error.get("code") in THROTTLING_CODES


def _paginator() -> JSONLinkPaginator:
    # Graph API pages carry the next page's full URL in `paging.next`, absent on the last page.
    return JSONLinkPaginator(next_url_path="paging.next")


@dlt.source(name="facebook_ads", section="facebook_ads", max_table_nesting=1)
def facebook_ads_source(base_url: str = dlt.config.value, api_key: str = dlt.secrets.value,
                        account_id: str = "act_1000", api_version: str = "v21.0",
                        start_date: str = "2024-01-01", attribution_window_days: int = 3,
                        page_size: int = 100) -> Any:
    """Campaigns and daily campaign insights of `account_id` from `base_url`
    (https://graph.facebook.com in production) with an access token (`api_key`, sent as
    `Authorization: Bearer`, so no request URL carries it).

    Tables: campaigns, campaign_insights.
    """
    # The token goes in the Authorization header, never the query string: request URLs end up in logs.
    client = rest_client(base_url, BearerTokenAuth(api_key), retry_condition=is_transient_graph_error)
    account = account_id if account_id.startswith("act_") else f"act_{account_id}"
    prefix = f"/{api_version}/{account}"

    @dlt.resource(name="campaigns", primary_key="id", write_disposition="merge")
    def campaigns() -> Iterator[list[dict[str, Any]]]:
        """Every campaign of the ad account (a small table, listed whole each run)."""
        params = {"fields": ",".join(CAMPAIGN_FIELDS), "limit": page_size}
        yield from client.paginate(f"{prefix}/campaigns", params=params, paginator=_paginator(), data_selector="data")

    @dlt.resource(name="campaign_insights", primary_key=("campaign_id", "date_start"), write_disposition="merge",
                  columns={"date_start": {"data_type": "date"}, "date_stop": {"data_type": "date"},
                           "spend": {"data_type": "double"}, "impressions": {"data_type": "bigint"},
                           "clicks": {"data_type": "bigint"}})
    def campaign_insights(
        day=dlt.sources.incremental("date_start", initial_value=date.fromisoformat(start_date),
                                    lag=attribution_window_days),
    ) -> Iterator[list[dict[str, Any]]]:
        """Spend, impressions and clicks per campaign per day."""
        since = day.start_value
        until = datetime.now(timezone.utc).date()
        params = {
            "level": "campaign", "time_increment": 1, "fields": ",".join(INSIGHT_FIELDS), "limit": page_size,
            "time_range": json.dumps({"since": since.isoformat(), "until": until.isoformat()}),
        }
        for page in client.paginate(f"{prefix}/insights", params=params, paginator=_paginator(), data_selector="data"):
            yield [insight_row(r) for r in page]

    return [campaigns, campaign_insights]
