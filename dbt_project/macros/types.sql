{#- A timestamp with time zone (dbt-core's cross-database type macros have none). -#}
{% macro type_timestamptz() -%}
    {{ return(adapter.dispatch('type_timestamptz')()) }}
{%- endmacro %}

{% macro default__type_timestamptz() -%}timestamp with time zone{%- endmacro %}

{% macro snowflake__type_timestamptz() -%}timestamp_tz{%- endmacro %}

{% macro bigquery__type_timestamptz() -%}timestamp{%- endmacro %}


{#- When dlt loaded a row: its `_dlt_load_id` is the load's start as UNIX seconds ("1764170000.123"). -#}
{% macro dlt_loaded_at(column='_dlt_load_id') -%}
    {{ return(adapter.dispatch('dlt_loaded_at')(column)) }}
{%- endmacro %}

{% macro default__dlt_loaded_at(column) -%}
    to_timestamp(cast({{ column }} as {{ dbt.type_float() }}))
{%- endmacro %}


{#- UNIX seconds (Stripe's `created`, ...) as a timestamp with time zone. -#}
{% macro epoch_to_timestamptz(column) -%}
    {{ return(adapter.dispatch('epoch_to_timestamptz')(column)) }}
{%- endmacro %}

{% macro default__epoch_to_timestamptz(column) -%}
    to_timestamp({{ column }})
{%- endmacro %}

{% macro bigquery__epoch_to_timestamptz(column) -%}
    timestamp_seconds({{ column }})
{%- endmacro %}


{#- dbt-core's safe_cast is a plain cast on DuckDB: use try_cast, so one malformed value (a
    HubSpot date property typed by hand) becomes NULL instead of failing every query on the view. -#}
{% macro duckdb__safe_cast(field, type) -%}
    try_cast({{ field }} as {{ type }})
{%- endmacro %}


{#- The UTC calendar date of a timestamp with time zone, whatever the session's time zone. -#}
{% macro utc_date(expr) -%}
    {{ return(adapter.dispatch('utc_date')(expr)) }}
{%- endmacro %}

{% macro default__utc_date(expr) -%}cast(timezone('UTC', {{ expr }}) as date){%- endmacro %}

{% macro snowflake__utc_date(expr) -%}cast(convert_timezone('UTC', {{ expr }}) as date){%- endmacro %}

{% macro bigquery__utc_date(expr) -%}date({{ expr }}){%- endmacro %}
