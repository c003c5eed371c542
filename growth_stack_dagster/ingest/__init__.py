"""Centralise: dlt pipelines from SaaS APIs and finance exports into the warehouse's raw schemas."""
