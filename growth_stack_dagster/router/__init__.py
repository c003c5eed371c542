"""Streaming routes: selected captured events delivered to SaaS tools within seconds.

`growth-stack router` tails the event files (including the one still being written), filters and
transforms each route's messages and delivers them with a durable cursor per route. Like the
collector it imports neither Dagster, dlt nor DuckDB.
"""
