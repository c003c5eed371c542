{#- hubspot.call_contact_associations, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'call_contact_associations', {
        'call_id': dbt.type_string(),
        'contact_id': dbt.type_string(),
        'type_id': dbt.type_bigint(),
        'category': dbt.type_string(),
        'label': dbt.type_string(),
        '_dlt_load_id': dbt.type_string(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        call_id,
        contact_id,
        type_id as association_type_id,
        category as association_category,
        label as association_label,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
