"""Zendesk Support as a dlt source: tickets and users through the cursor-based incremental exports.

The first run exports from `start_time`; every later run resumes from the `after_cursor` the last
complete run ended on (kept in dlt resource state, committed with the load), as Zendesk recommends.
Deleted tickets come through the export with `status = "deleted"`. Rows merge on `id`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
from dlt.sources.helpers.rest_client.auth import AuthConfigBase, BearerTokenAuth, HttpBasicAuth

from growth_stack_dagster.ingest.sources.http import ZendeskExportPaginator, rest_client


def zendesk_auth(api_key: str, email: str | None) -> AuthConfigBase:
    """Zendesk's API-token basic auth (`<email>/token:<api_key>`) when an email is given, else OAuth bearer."""
    return HttpBasicAuth(f"{email}/token", api_key) if email else BearerTokenAuth(api_key)


# Fields the staging models read, or that are often empty on every row of a load: typed up front so
# their columns exist from the first load (dlt otherwise leaves an all-empty column out, with a warning).
COLUMN_HINTS: dict[str, dict[str, dict[str, Any]]] = {
    "tickets": {f: {"data_type": t} for f, t in (
        ("subject", "text"), ("description", "text"), ("status", "text"), ("priority", "text"), ("type", "text"),
        ("requester_id", "bigint"), ("submitter_id", "bigint"), ("assignee_id", "bigint"),
        ("organization_id", "bigint"), ("group_id", "bigint"), ("external_id", "text"),
        ("due_at", "timestamp"), ("created_at", "timestamp"), ("updated_at", "timestamp"),
        ("recipient", "text"), ("satisfaction_rating", "json"))},
    "users": {f: {"data_type": t} for f, t in (
        ("name", "text"), ("email", "text"), ("external_id", "text"), ("role", "text"), ("phone", "text"),
        ("organization_id", "bigint"), ("time_zone", "text"), ("locale", "text"),
        ("created_at", "timestamp"), ("updated_at", "timestamp"))},
}


def _export_resource(client, name: str, page_size: int, start_time: int):
    @dlt.resource(name=name, primary_key="id", write_disposition="merge", columns=COLUMN_HINTS[name])
    def export() -> Iterator[list[dict[str, Any]]]:
        state = dlt.current.resource_state()
        params: dict[str, Any] = {"per_page": page_size}
        if state.get("after_cursor"):
            params["cursor"] = state["after_cursor"]
        else:
            params["start_time"] = start_time
        paginator = ZendeskExportPaginator()
        for page in client.paginate(f"/api/v2/incremental/{name}/cursor.json", params=params,
                                    paginator=paginator, data_selector=name):
            if page:
                yield page
        if paginator.last_cursor:
            state["after_cursor"] = paginator.last_cursor

    return export


@dlt.source(name="zendesk", section="zendesk", max_table_nesting=1)
def zendesk_source(base_url: str = dlt.config.value, api_key: str = dlt.secrets.value,
                   email: str | None = None, start_time: int = 0, page_size: int = 1000) -> Any:
    """Tickets and users from `base_url` (https://<subdomain>.zendesk.com in production).

    `api_key` is an API token used with `email`, or an OAuth access token when `email` is unset.
    Tables: tickets, users.
    """
    client = rest_client(base_url, zendesk_auth(api_key, email))
    return [_export_resource(client, "tickets", page_size, start_time),
            _export_resource(client, "users", page_size, start_time)]
