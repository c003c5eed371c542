{#- hubspot.deals__properties_with_history__dealstage, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'deals__properties_with_history__dealstage', {
        'value': dbt.type_string(),
        'timestamp': type_timestamptz(),
        'source_type': dbt.type_string(),
        '_dlt_parent_id': dbt.type_string(),
        '_dlt_list_idx': dbt.type_bigint(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        value as deal_stage,
        timestamp as changed_at,
        source_type,
        _dlt_parent_id as deal_dlt_id,
        _dlt_list_idx as list_index,
        _dlt_id as dlt_id
    from source
)

select * from final
