"""Reverse-ETL destinations, by name. Each module implements `base.Destination`."""

from __future__ import annotations

import importlib

# name -> "module:class"; imported only when used.
DESTINATIONS = {
    "hubspot": "growth_stack_dagster.activation.destinations.hubspot:HubSpot",
    "customerio": "growth_stack_dagster.activation.destinations.customerio:CustomerIO",
    "amplitude": "growth_stack_dagster.activation.destinations.amplitude:Amplitude",
    "facebook": "growth_stack_dagster.activation.destinations.facebook:FacebookAudience",
    "zendesk": "growth_stack_dagster.activation.destinations.zendesk:Zendesk",
    "webhook": "growth_stack_dagster.activation.destinations.webhook:Webhook",
}


def destination_class(name: str):
    """The class of destination `name`; a ValueError naming the known ones otherwise."""
    target = DESTINATIONS.get(name)
    if target is None:
        raise ValueError(f"Unknown destination {name!r}; known destinations: {', '.join(sorted(DESTINATIONS))}.")
    module, attr = target.split(":")
    return getattr(importlib.import_module(module), attr)
