{#- The bookkeeping columns every HubSpot CRM object table has (archived flag, timestamps, dlt ids),
    as {raw name: type} for `source_or_empty`, plus `extra` (the object's own properties). -#}
{% macro hubspot_object_columns(extra=none) -%}
    {%- set columns = {
        'archived': dbt.type_boolean(), 'created_at': type_timestamptz(), 'updated_at': type_timestamptz(),
        'modified_at': type_timestamptz(), '_dlt_load_id': dbt.type_string(), '_dlt_id': dbt.type_string(),
    } -%}
    {%- do columns.update(extra or {}) -%}
    {{ return(columns) }}
{%- endmacro %}

{#- Those bookkeeping columns, renamed for staging. -#}
{% macro hubspot_object_renamed_columns() -%}
        archived as is_archived,
        created_at,
        updated_at,
        modified_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
{%- endmacro %}
