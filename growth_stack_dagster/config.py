"""Where Growth Stack keeps its files and which endpoints it talks to.

Every value comes from the environment, read when a function is called (never at import time),
with defaults that point at the local SaaS sandbox and collector so the demo works unconfigured.
"""

from __future__ import annotations

import os
from pathlib import Path

DEFAULT_SANDBOX_URL = "http://127.0.0.1:8090"
DEFAULT_COLLECTOR_URL = "http://127.0.0.1:8080"
DEFAULT_SANDBOX_TOKEN = "sk_test_sandbox"
DEFAULT_WRITE_KEYS = "web=web-dev-key,ios=ios-dev-key,server=server-dev-key"
# Sandbox webhook secrets: the sandbox signs with these and the collector verifies with them.
DEFAULT_STRIPE_WEBHOOK_SECRET = "whsec_sandbox_stripe"
DEFAULT_CUSTOMERIO_WEBHOOK_SIGNING_KEY = "sandbox_customerio_signing_key"
DEFAULT_STANDARD_WEBHOOK_SECRET = "whsec_c2FuZGJveC1zdGFuZGFyZC13ZWJob29rcw=="
DEFAULT_HUBSPOT_CLIENT_SECRET = "sandbox-hubspot-app-client-secret"


def home() -> Path:
    """The data folder: `$GROWTH_STACK_HOME`, default `./.growth_stack`."""
    return Path(os.environ.get("GROWTH_STACK_HOME", "./.growth_stack")).resolve()


def events_dir() -> Path:
    """Root of the immutable event files (layout in `growth_stack_dagster.eventfiles`)."""
    return home() / "events"


def warehouse_path() -> Path:
    return Path(os.environ.get("GROWTH_STACK_WAREHOUSE", home() / "warehouse.duckdb")).resolve()


def dbt_project_dir() -> Path:
    """The dbt project: `$GROWTH_STACK_DBT_PROJECT_DIR`, default the repository's `dbt_project/`
    (a copy elsewhere lets tests and trials add models and syncs without touching the repository)."""
    default = Path(__file__).resolve().parents[1] / "dbt_project"
    return Path(os.environ.get("GROWTH_STACK_DBT_PROJECT_DIR") or default).resolve()


def dagster_home() -> Path:
    return home() / "dagster_home"


def sandbox_state_dir() -> Path:
    return home() / "sandbox"


def finance_drop_dir() -> Path:
    """Folder where finance CSV exports (SKU unit costs) are dropped."""
    return Path(os.environ.get("GROWTH_STACK_FINANCE_DROP", home() / "drops" / "finance")).resolve()


def simulation_dir() -> Path:
    """Where the simulator writes its ground truth."""
    return home() / "simulation"


def sandbox_url() -> str:
    return os.environ.get("GROWTH_STACK_SANDBOX_URL", DEFAULT_SANDBOX_URL).rstrip("/")


def collector_url() -> str:
    return os.environ.get("GROWTH_STACK_COLLECTOR_URL", DEFAULT_COLLECTOR_URL).rstrip("/")


def sandbox_token() -> str:
    return os.environ.get("GROWTH_STACK_SANDBOX_TOKEN", DEFAULT_SANDBOX_TOKEN)


def parse_write_keys(spec: str) -> dict[str, str]:
    """Parse `source=key,source=key` into {write_key: source}.

    Raises ValueError with a sentence saying what is wrong for a malformed pair.
    """
    keys: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in spec.split(","))):
        source, sep, key = pair.partition("=")
        if not sep or not source.strip() or not key.strip():
            raise ValueError(
                f"GROWTH_STACK_WRITE_KEYS entry {pair!r} is not of the form source=key; "
                "write it as e.g. web=web-dev-key,ios=ios-dev-key."
            )
        keys[key.strip()] = source.strip()
    return keys


def write_keys() -> dict[str, str]:
    """{write_key: source} from `GROWTH_STACK_WRITE_KEYS`."""
    return parse_write_keys(os.environ.get("GROWTH_STACK_WRITE_KEYS", DEFAULT_WRITE_KEYS))


def stripe_webhook_secret() -> str:
    return os.environ.get("STRIPE_WEBHOOK_SECRET", DEFAULT_STRIPE_WEBHOOK_SECRET)


def customerio_webhook_signing_key() -> str:
    return os.environ.get("CUSTOMERIO_WEBHOOK_SIGNING_KEY", DEFAULT_CUSTOMERIO_WEBHOOK_SIGNING_KEY)


def standard_webhook_secret() -> str:
    return os.environ.get("GROWTH_STACK_WEBHOOK_SECRET", DEFAULT_STANDARD_WEBHOOK_SECRET)


def hubspot_client_secret() -> str:
    """The HubSpot app's client secret, which signs its webhooks (`X-HubSpot-Signature-v3`)."""
    return os.environ.get("HUBSPOT_CLIENT_SECRET", DEFAULT_HUBSPOT_CLIENT_SECRET)


def development_secret_values() -> frozenset[str]:
    """Every built-in development credential the project ships (write keys, the sandbox token, every
    webhook secret): a server that trusts any of them, under whichever variable, is a development server."""
    return frozenset({*parse_write_keys(DEFAULT_WRITE_KEYS), DEFAULT_SANDBOX_TOKEN, DEFAULT_STRIPE_WEBHOOK_SECRET,
                      DEFAULT_CUSTOMERIO_WEBHOOK_SIGNING_KEY, DEFAULT_STANDARD_WEBHOOK_SECRET,
                      DEFAULT_HUBSPOT_CLIENT_SECRET})
