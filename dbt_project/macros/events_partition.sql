{% macro events_date_range() %}
    {#- The received dates an `events_daily` model rebuilds: {'min': 'YYYY-MM-DD', 'max': 'YYYY-MM-DD'}
        (both inclusive), or none for a full build or the model's own incremental default.
        The dbt vars min_date/max_date win when given (or overridden by a unit test); otherwise the
        environment variables GROWTH_STACK_EVENTS_MIN_DATE/MAX_DATE, which a Dagster partition run sets:
        a changed env var re-parses only the files that read it, a changed --vars the whole project. -#}
    {%- if var.has_var('min_date') or var.has_var('max_date') -%}
        {%- set min_date = var('min_date', none) -%}
        {%- set max_date = var('max_date', none) -%}
        {%- set origin = 'dbt vars' -%}
    {%- else -%}
        {%- set min_date = env_var('GROWTH_STACK_EVENTS_MIN_DATE', '') or none -%}
        {%- set max_date = env_var('GROWTH_STACK_EVENTS_MAX_DATE', '') or none -%}
        {%- set origin = 'environment variables GROWTH_STACK_EVENTS_' -%}
    {%- endif -%}
    {%- if (min_date is none) != (max_date is none) -%}
        {{ exceptions.raise_compiler_error("Pass both min_date and max_date (YYYY-MM-DD, inclusive) or neither, through the " ~ origin ~ "; got min_date=" ~ min_date ~ ", max_date=" ~ max_date ~ ".") }}
    {%- endif -%}
    {%- if min_date is none -%}
        {{ return(none) }}
    {%- endif -%}
    {%- for d in [min_date, max_date] -%}
        {%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', d | string) -%}
            {{ exceptions.raise_compiler_error("min_date and max_date (" ~ origin ~ ") must be dates written YYYY-MM-DD, not '" ~ d ~ "'.") }}
        {%- endif -%}
    {%- endfor -%}
    {%- if (min_date | string) > (max_date | string) -%}
        {{ exceptions.raise_compiler_error("min_date " ~ min_date ~ " is after max_date " ~ max_date ~ " (" ~ origin ~ ").") }}
    {%- endif -%}
    {{ return({'min': min_date | string, 'max': max_date | string}) }}
{% endmacro %}
