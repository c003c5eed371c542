"""Activate: reverse-ETL syncs from the `activation.sync_*` models to SaaS tools."""
