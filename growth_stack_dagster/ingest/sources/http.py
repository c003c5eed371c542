"""HTTP pieces the sources share: a retrying dlt REST client and the paginators dlt lacks.

Retries (429 and 5xx with `Retry-After`, exponential backoff, connection errors) come from
dlt's own requests session, configured the dlt way (`RUNTIME__REQUEST_MAX_ATTEMPTS`,
`RUNTIME__REQUEST_BACKOFF_FACTOR`, `RUNTIME__REQUEST_MAX_RETRY_DELAY`, `RUNTIME__REQUEST_TIMEOUT`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import orjson
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.requests.retry import RetryPredicate
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import AuthConfigBase
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests import Request, Response


def rest_client(base_url: str, auth: AuthConfigBase | None, data_selector: str | None = None,
                paginator: BasePaginator | None = None, headers: dict[str, str] | None = None,
                retry_condition: RetryPredicate | None = None) -> RESTClient:
    """A dlt RESTClient on `base_url` over dlt's retrying session, with the `RUNTIME__REQUEST_*`
    settings applied; `retry_condition` adds API-specific transient errors to 429 and 5xx."""
    # dlt injects the RUNTIME__REQUEST_* settings into Client when it is created.
    session = Client(raise_for_status=False, retry_condition=retry_condition).session
    return OrjsonRESTClient(base_url=base_url.rstrip("/"), auth=auth, data_selector=data_selector,
                            paginator=paginator, headers=headers, session=session)


class OrjsonRESTClient(RESTClient):
    """dlt's REST client, parsing each page once, with orjson: the client reads the page's data and
    the paginator then reads its cursor from the same body, which would parse it a second time."""

    def extract_response(self, response: Response, data_selector: Any) -> list[Any]:
        parsed = orjson.loads(response.content)
        response.json = lambda **_: parsed  # type: ignore[method-assign]
        return super().extract_response(response, data_selector)


def batched_pages(pages: Iterable[list[dict[str, Any]]], rows: int) -> Iterator[list[dict[str, Any]]]:
    """API pages regrouped into batches of at least `rows` objects (the last may be smaller):
    dlt's per-item overhead is paid per batch, not per page."""
    batch: list[dict[str, Any]] = []
    for page in pages:
        batch.extend(page)
        if len(batch) >= rows:
            yield batch
            batch = []
    if batch:
        yield batch


class StripeListPaginator(BasePaginator):
    """Stripe list pagination: `starting_after=<id of the last object>` while `has_more` is true."""

    def __init__(self) -> None:
        super().__init__()
        self._last_id: str | None = None

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        body = response.json()
        self._last_id = data[-1]["id"] if data else None
        self._has_next_page = bool(body.get("has_more")) and self._last_id is not None

    def update_request(self, request: Request) -> None:
        if request.params is None:
            request.params = {}
        request.params["starting_after"] = self._last_id


class ZendeskExportPaginator(BasePaginator):
    """Zendesk cursor-based incremental export: follow `after_cursor` until `end_of_stream`.

    The first request carries `start_time`; later pages carry only `cursor`, as the API requires.
    `after_cursor` of the last page is where the next export resumes (see `last_cursor`).
    """

    def __init__(self) -> None:
        super().__init__()
        self.last_cursor: str | None = None

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        body = response.json()
        if body.get("after_cursor"):
            self.last_cursor = body["after_cursor"]
        self._has_next_page = not body.get("end_of_stream", True) and bool(body.get("after_cursor"))

    def update_request(self, request: Request) -> None:
        request.params = {k: v for k, v in (request.params or {}).items() if k not in ("start_time", "cursor")}
        request.params["cursor"] = self.last_cursor
