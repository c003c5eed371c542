"""Sandbox defaults for the sources' configuration, as the lowest-priority dlt config provider.

Anything set the dlt way (`SOURCES__HUBSPOT__API_KEY`, `.dlt/secrets.toml`, ...) wins; when nothing
is set, the demo points every source at the local sandbox with the sandbox token. Values are read
from the environment when dlt asks for them, never at import time.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import dlt
from dlt.common.configuration.providers.provider import ConfigProvider

from growth_stack_dagster import config

# sandbox path prefix of each source's emulation
SANDBOX_PREFIXES = {"hubspot": "/hubspot", "stripe": "/stripe", "facebook_ads": "/facebook", "zendesk": "/zendesk"}


def sandbox_defaults() -> dict[str, dict[str, Any]]:
    """{source name: {config key: default}} computed from the environment now."""
    out: dict[str, dict[str, Any]] = {
        name: {"base_url": config.sandbox_url() + prefix, "api_key": config.sandbox_token()}
        for name, prefix in SANDBOX_PREFIXES.items()
    }
    out["finance"] = {"drop_dir": str(config.finance_drop_dir())}
    return out


# Arrow tables (HubSpot CRM objects, Stripe objects) get `_dlt_load_id` like rows that go through
# dlt's normalizer; they bring their own `_dlt_id` (child rows refer to it), so dlt adds none and
# writes their files as they are.
ARROW_NORMALIZER_DEFAULTS = {"add_dlt_load_id": True}


class SandboxDefaultsProvider(ConfigProvider):
    """Answers `sources.<name>.<key>` lookups with the sandbox defaults, and the Arrow normalizer's
    `normalize.parquet_normalizer.add_dlt_load_id` with true; nothing else."""

    NAME: ClassVar[str] = "Growth Stack sandbox defaults"

    def __init__(self, defaults: Callable[[], dict[str, dict[str, Any]]] = sandbox_defaults):
        self._defaults = defaults

    def get_value(self, key: str, hint: type[Any], pipeline_name: str | None, *sections: str) -> tuple[Any, str]:
        full_key = "__".join((*sections, key))
        if tuple(sections[-2:]) == ("normalize", "parquet_normalizer") and key in ARROW_NORMALIZER_DEFAULTS:
            return ARROW_NORMALIZER_DEFAULTS[key], full_key
        if len(sections) == 2 and sections[0] == "sources":
            value = self._defaults().get(sections[1], {}).get(key)
            if value is not None:
                return value, full_key
        return None, full_key

    @property
    def supports_secrets(self) -> bool:
        return True

    @property
    def supports_sections(self) -> bool:
        return True

    @property
    def name(self) -> str:
        return self.NAME


def register_sandbox_defaults() -> None:
    """Add the sandbox defaults behind every other dlt config provider (idempotent)."""
    if not any(isinstance(p, SandboxDefaultsProvider) for p in dlt.config.config_providers):
        dlt.config.register_provider(SandboxDefaultsProvider())
