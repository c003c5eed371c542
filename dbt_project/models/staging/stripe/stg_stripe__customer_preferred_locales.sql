{#- stripe.customers__preferred_locales, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'customers__preferred_locales', {
        'value': dbt.type_string(),
        '_dlt_parent_id': dbt.type_string(),
        '_dlt_list_idx': dbt.type_bigint(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        value as locale,
        _dlt_parent_id as customer_dlt_id,
        _dlt_list_idx as list_index,
        _dlt_id as dlt_id
    from source
)

select * from final
