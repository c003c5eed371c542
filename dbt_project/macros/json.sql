{#- The text at `path` (JSONPath, e.g. '$.price') of a JSON document held in `column` (dlt stores
    objects nested deeper than the source's max_table_nesting as JSON). -#}
{% macro json_extract_text(column, path) -%}
    {{ return(adapter.dispatch('json_extract_text')(column, path)) }}
{%- endmacro %}

{% macro default__json_extract_text(column, path) -%}
    json_extract_string({{ column }}, '{{ path }}')
{%- endmacro %}

{% macro snowflake__json_extract_text(column, path) -%}
    json_extract_path_text({{ column }}, '{{ path[2:] }}')
{%- endmacro %}

{% macro bigquery__json_extract_text(column, path) -%}
    json_value({{ column }}, '{{ path }}')
{%- endmacro %}
