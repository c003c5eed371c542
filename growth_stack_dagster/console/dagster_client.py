"""Launch an asset's materialization in a running Dagster webserver through its GraphQL API (what the UI's
"Materialize" button does), so "Run now" on the console runs in Dagster, logged and visible there."""

from __future__ import annotations

import requests

_FIND = """
query FindAsset($key: AssetKeyInput!) {
  assetNodeOrError(assetKey: $key) {
    __typename
    ... on AssetNode { repository { name location { name } } }
  }
}"""

_LAUNCH = """
mutation Launch($params: ExecutionParams!) {
  launchPipelineExecution(executionParams: $params) {
    __typename
    ... on LaunchRunSuccess { run { runId } }
    ... on PythonError { message }
    ... on InvalidSubsetError { message }
    ... on RunConfigValidationInvalid { errors { message } }
    ... on UnauthorizedError { message }
  }
}"""


class LaunchError(RuntimeError):
    """Dagster could not be reached or refused the launch; the message says what to do."""


def _graphql(dagster_url: str, query: str, variables: dict) -> dict:
    try:
        response = requests.post(f"{dagster_url.rstrip('/')}/graphql", json={"query": query, "variables": variables},
                                 timeout=30)
    except requests.RequestException:
        raise LaunchError(f"The Dagster UI at {dagster_url} does not answer: start it (`make demo` or `dagster dev`) "
                          "and try again.") from None
    if response.status_code != 200:
        raise LaunchError(f"The Dagster UI at {dagster_url} answered HTTP {response.status_code}.")
    body = response.json()
    if body.get("errors"):
        raise LaunchError("Dagster refused the request: " + "; ".join(e.get("message", "") for e in body["errors"]))
    return body["data"]


def launch_asset_run(dagster_url: str, asset_key: list[str], tags: dict[str, str] | None = None) -> str:
    """Start a run materializing `asset_key`; its run id. LaunchError when Dagster is down or does not know it."""
    found = _graphql(dagster_url, _FIND, {"key": {"path": asset_key}})["assetNodeOrError"]
    if found.get("__typename") != "AssetNode":
        raise LaunchError(f"Dagster does not know the asset {'/'.join(asset_key)} yet: reload the code location "
                          "(Deployment → Reload in the Dagster UI) so it reads the saved declaration.")
    repo = found["repository"]
    params = {
        "selector": {"repositoryLocationName": repo["location"]["name"], "repositoryName": repo["name"],
                     "pipelineName": "__ASSET_JOB", "assetSelection": [{"path": asset_key}]},
        "mode": "default",
        "executionMetadata": {"tags": [{"key": k, "value": v}
                                       for k, v in {"growth_stack/trigger": "console", **(tags or {})}.items()]},
    }
    launched = _graphql(dagster_url, _LAUNCH, {"params": params})["launchPipelineExecution"]
    if launched.get("__typename") != "LaunchRunSuccess":
        detail = launched.get("message") or "; ".join(e["message"] for e in launched.get("errors", []))
        raise LaunchError(f"Dagster did not start the run ({launched.get('__typename')}): {detail}")
    return launched["run"]["runId"]
