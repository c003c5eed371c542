"""dlt sources, one module per system. Each source is a pure function configured by a base URL and
credentials (dlt's `SOURCES__<NAME>__<KEY>` environment convention); unset values fall back to the
local SaaS sandbox (see `defaults.py`)."""
