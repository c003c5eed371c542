"""Streaming routes in Dagster: an asset per route observed from the router's state, with a lag check."""
