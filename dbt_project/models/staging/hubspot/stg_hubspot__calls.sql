{#- hubspot.calls, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'calls', hubspot_object_columns({
        'id': dbt.type_string(),
        'properties__hs_timestamp': dbt.type_string(),
        'properties__hs_call_title': dbt.type_string(),
        'properties__hs_call_body': dbt.type_string(),
        'properties__hs_call_duration': dbt.type_string(),
        'properties__hs_call_direction': dbt.type_string(),
        'properties__hs_call_disposition': dbt.type_string(),
        'properties__hs_call_status': dbt.type_string(),
        'properties__hubspot_owner_id': dbt.type_string()
    })) }}
),

final as (
    select
        id as call_id,
        {{ dbt.safe_cast('properties__hs_timestamp', type_timestamptz()) }} as called_at,
        properties__hs_call_title as title,
        properties__hs_call_body as body,
        {{ dbt.safe_cast('properties__hs_call_duration', dbt.type_bigint()) }} as duration_ms,
        properties__hs_call_direction as direction,
        properties__hs_call_disposition as disposition,
        properties__hs_call_status as call_status,
        properties__hubspot_owner_id as owner_id,
        {{ hubspot_object_renamed_columns() }}
    from source
)

select * from final
