{#- The point in time computed traits are evaluated at: one value for the whole dbt invocation.
    The dbt var `as_of`, else the environment variable GROWTH_STACK_AS_OF, else the moment the
    invocation started (dbt's run_started_at, UTC). Written as a date (YYYY-MM-DD: 00:00:00 UTC of that
    day) or an ISO 8601 timestamp (2026-03-02T15:30:00Z; without an offset it is UTC). -#}
{% macro as_of_at() -%}
    {%- set raw = (var('as_of', '') or env_var('GROWTH_STACK_AS_OF', '')) | string | trim -%}
    {%- if not raw -%}
        {{ return(run_started_at.astimezone(modules.pytz.utc)) }}
    {%- endif -%}
    {%- set pattern = '^[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\\.[0-9]{1,6})?)?)?(Z|[+-][0-9]{2}:?[0-9]{2})?$' -%}
    {%- if not modules.re.match(pattern, raw) -%}
        {{ exceptions.raise_compiler_error("The dbt var as_of must be a date written YYYY-MM-DD or a timestamp written YYYY-MM-DDTHH:MM:SSZ (or empty for the moment of the build), not '" ~ raw ~ "'.") }}
    {%- endif -%}
    {%- set parsed = modules.datetime.datetime.fromisoformat(raw.replace('Z', '+00:00')) -%}
    {%- if parsed.tzinfo is none -%}
        {%- set parsed = modules.pytz.utc.localize(parsed) -%}
    {%- endif -%}
    {{ return(parsed.astimezone(modules.pytz.utc)) }}
{%- endmacro %}


{#- SQL: a timestamp with time zone literal for a Python datetime (UTC). -#}
{% macro timestamp_literal(moment) -%}
    cast('{{ moment.strftime("%Y-%m-%d %H:%M:%S.%f") }}+00' as {{ type_timestamptz() }})
{%- endmacro %}


{#- SQL: a date literal for a Python date. -#}
{% macro date_literal(day) -%}
    cast('{{ day.isoformat() }}' as date)
{%- endmacro %}
