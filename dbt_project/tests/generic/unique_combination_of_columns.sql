{#- Fails with every combination of `combination_of_columns` that occurs on more than one row
    (a compound key's `unique` test; dbt packages cannot be installed here). -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
    {%- set columns = combination_of_columns | join(', ') %}
    select {{ columns }}, count(*) as rows_with_this_key
    from {{ model }}
    group by {{ columns }}
    having count(*) > 1
{% endtest %}
