{#- hubspot.deals, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'deals', hubspot_object_columns({
        'id': dbt.type_string(),
        'properties__dealname': dbt.type_string(),
        'properties__amount': dbt.type_string(),
        'properties__dealstage': dbt.type_string(),
        'properties__pipeline': dbt.type_string(),
        'properties__dealtype': dbt.type_string(),
        'properties__closedate': dbt.type_string(),
        'properties__hubspot_owner_id': dbt.type_string()
    })) }}
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
        {{ hubspot_object_renamed_columns() }}
    from source
)

select * from final
