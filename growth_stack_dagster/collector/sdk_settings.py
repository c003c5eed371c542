"""The settings the browser SDKs fetch before they send anything, served by the collector itself.

Segment's analytics.js (analytics-next) loads `<cdnURL>/v1/projects/<writeKey>/settings` and sends
to the `apiHost` of its `Segment.io` integration; RudderStack's JavaScript SDK (v3) loads
`<configUrl>/sourceConfig/?writeKey=...` and needs `source.id`, `source.config` and a
`source.destinations` list. Pointing `cdnURL` or `configUrl` at the collector makes both SDKs
talk to nobody but the collector: no destinations run in the browser, and the SDKs' own error
and metrics reporting are turned off.
"""

from __future__ import annotations

from typing import Any


def segment_settings(write_key: str, api_host: str, protocol: str) -> dict[str, Any]:
    """The CDN settings of one write key: every call goes to `<protocol>://<api_host>` (e.g. `host:port/v1`)."""
    return {
        "integrations": {"Segment.io": {
            "apiKey": write_key, "apiHost": api_host, "protocol": protocol,
            "unbundledIntegrations": [], "addBundledMetadata": True, "maybeBundledConfigIds": {},
        }},
        "plan": {"track": {"__default": {"enabled": True, "integrations": {}}},
                 "identify": {"__default": {"enabled": True}}, "group": {"__default": {"enabled": True}}},
        "edgeFunction": {}, "analyticsNextEnabled": True, "middlewareSettings": {}, "enabledMiddleware": {},
        "metrics": {"sampleRate": 0}, "legacyVideoPluginsEnabled": False, "remotePlugins": [],
    }


def rudderstack_source_config(write_key: str, source: str) -> dict[str, Any]:
    """The source configuration of one write key, as RudderStack's config backend shapes it."""
    return {
        "isHosted": False,
        "source": {
            "id": source, "name": source, "writeKey": write_key, "enabled": True,
            "workspaceId": "growth-stack", "updatedAt": "1970-01-01T00:00:00.000Z",
            "config": {"statsCollection": {"errors": {"enabled": False}, "metrics": {"enabled": False}}},
            "destinations": [],
        },
    }
