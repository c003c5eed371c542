{#- hubspot.calls, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'calls', {
        'id': dbt.type_string(),
        'properties__hs_timestamp': dbt.type_string(),
        'properties__hs_call_title': dbt.type_string(),
        'properties__hs_call_body': dbt.type_string(),
        'properties__hs_call_duration': dbt.type_string(),
        'properties__hs_call_direction': dbt.type_string(),
        'properties__hs_call_disposition': dbt.type_string(),
        'properties__hs_call_status': dbt.type_string(),
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
        id as call_id,
        {{ dbt.safe_cast('properties__hs_timestamp', type_timestamptz()) }} as called_at,
        properties__hs_call_title as title,
        properties__hs_call_body as body,
        {{ dbt.safe_cast('properties__hs_call_duration', dbt.type_bigint()) }} as duration_ms,
        properties__hs_call_direction as direction,
        properties__hs_call_disposition as disposition,
        properties__hs_call_status as call_status,
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
