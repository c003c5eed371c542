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

{#- An association table (v4 associations: the two object ids, the association type), as
    {raw name: type} for `source_or_empty`. -#}
{% macro hubspot_association_columns(from_id, to_id) -%}
    {{ return({
        from_id: dbt.type_string(), to_id: dbt.type_string(), 'type_id': dbt.type_bigint(),
        'category': dbt.type_string(), 'label': dbt.type_string(),
        '_dlt_load_id': dbt.type_string(), '_dlt_id': dbt.type_string(),
    }) }}
{%- endmacro %}

{#- Those columns, renamed for staging. -#}
{% macro hubspot_association_renamed_columns(from_id, to_id) -%}
        {{ from_id }},
        {{ to_id }},
        type_id as association_type_id,
        category as association_category,
        label as association_label,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
{%- endmacro %}
