{% macro events_date_range() %}
    {#- The received dates an `events_daily` model rebuilds: {'min': 'YYYY-MM-DD', 'max': 'YYYY-MM-DD'}
        (both inclusive), or none for a full build or the model's own incremental default.
        The dbt vars min_date/max_date win when given (or overridden by a unit test); otherwise the
        environment variables GROWTH_STACK_EVENTS_MIN_DATE/MAX_DATE, which a Dagster partition run sets
        (changed --vars make dbt re-parse the whole project; these env vars make it re-parse nothing). -#}
    {%- if var.has_var('min_date') or var.has_var('max_date') -%}
        {%- set min_date = var('min_date', none) -%}
        {%- set max_date = var('max_date', none) -%}
        {%- set origin = 'dbt vars' -%}
    {%- elif execute -%}
        {#- read only when running, never while parsing: dbt would re-parse every file that read an env
            var whose value changed, and each partition run changes these -#}
        {%- set min_date = env_var('GROWTH_STACK_EVENTS_MIN_DATE', '') or none -%}
        {%- set max_date = env_var('GROWTH_STACK_EVENTS_MAX_DATE', '') or none -%}
        {%- set origin = 'environment variables GROWTH_STACK_EVENTS_' -%}
    {%- else -%}
        {{ return(none) }}
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

{% macro default__get_where_subquery(relation) -%}
    {#- dbt's own, plus two placeholders for the data tests of `events_daily` models: __events_min_date__
        and __events_max_date__ become the dates the run rebuilds (events_date_range; all dates without
        them). YAML configs are rendered while parsing, so the dates cannot be written there. -#}
    {%- set where = config.get('where', '') -%}
    {%- if where and '__events_' in where -%}
        {%- set dates = events_date_range() -%}
        {%- set where = where | replace('__events_min_date__', "cast('" ~ (dates.min if dates else '0001-01-01') ~ "' as date)")
                              | replace('__events_max_date__', "cast('" ~ (dates.max if dates else '9999-12-31') ~ "' as date)") -%}
    {%- endif -%}
    {%- if where -%}
        {%- set filtered -%}
            (select * from {{ relation }} where {{ where }}) dbt_subquery
        {%- endset -%}
        {%- do return(filtered) -%}
    {%- else -%}
        {%- do return(relation) -%}
    {%- endif -%}
{%- endmacro %}
