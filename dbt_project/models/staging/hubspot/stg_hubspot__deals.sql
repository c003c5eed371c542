{#- hubspot.deals, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'deals', {
        'id': dbt.type_string(),
        'properties__dealname': dbt.type_string(),
        'properties__amount': dbt.type_string(),
        'properties__dealstage': dbt.type_string(),
        'properties__pipeline': dbt.type_string(),
        'properties__dealtype': dbt.type_string(),
        'properties__closedate': dbt.type_string(),
        'properties__hubspot_owner_id': dbt.type_string(),
        'archived': dbt.type_boolean(),
        'created_at': type_timestamptz(),
        'updated_at': type_timestamptz(),
        'modified_at': type_timestamptz(),
        '_dlt_load_id': dbt.type_string(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        id as deal_id,
        properties__dealname as deal_name,
        {{ dbt.safe_cast('properties__amount', dbt.type_numeric()) }} as amount,
        properties__dealstage as deal_stage,
        properties__pipeline as pipeline,
        properties__dealtype as deal_type,
        {{ dbt.safe_cast('properties__closedate', type_timestamptz()) }} as closed_at,
        properties__hubspot_owner_id as owner_id,
        archived as is_archived,
        created_at,
        updated_at,
        modified_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
