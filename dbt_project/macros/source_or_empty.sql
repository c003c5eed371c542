{#- A select over source(source_name, table_name) with exactly `columns` ({raw name: type}), so a
    staging model builds on a fresh warehouse: a table that does not exist yet (an event table
    appears when its event is first seen, a dlt child table when a list first has items) yields no
    rows, and a column that does not exist yet (a property never sent) yields a typed NULL.
    The check runs when the view is created, and `dbt build` recreates the views on every run. -#}
{% macro source_or_empty(source_name, table_name, columns) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- set existing = none -%}
    {%- if execute -%}
        {%- set found = adapter.get_relation(database=relation.database, schema=relation.schema,
                                             identifier=relation.identifier) -%}
        {%- if found is not none -%}
            {%- set existing = adapter.get_columns_in_relation(found) | map(attribute='name') | map('lower') | list -%}
        {%- endif -%}
    {%- endif %}
    select
    {%- for name, data_type in columns.items() %}
        {% if existing is not none and name | lower in existing -%}
            cast({{ adapter.quote(name) }} as {{ data_type }})
        {%- else -%}
            cast(null as {{ data_type }})
        {%- endif %} as {{ adapter.quote(name) }}{{ "," if not loop.last }}
    {%- endfor %}
    {% if existing is not none -%}
    from {{ relation }}
    {%- else -%}
    {#- the table does not exist yet: no rows, same columns -#}
    where 1 = 0
    {%- endif %}
{%- endmacro %}
