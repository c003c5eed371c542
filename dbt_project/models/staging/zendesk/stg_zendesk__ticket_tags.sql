{#- zendesk.tickets__tags, renamed and cast. -#}
with source as (
    {{ source_or_empty('zendesk', 'tickets__tags', {
        'value': dbt.type_string(),
        '_dlt_parent_id': dbt.type_string(),
        '_dlt_list_idx': dbt.type_bigint(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        value as tag,
        _dlt_parent_id as ticket_dlt_id,
        _dlt_list_idx as list_index,
        _dlt_id as dlt_id
    from source
)

select * from final
