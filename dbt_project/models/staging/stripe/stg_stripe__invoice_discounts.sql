{#- stripe.invoices__discounts, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'invoices__discounts', {
        'value': dbt.type_string(),
        '_dlt_parent_id': dbt.type_string(),
        '_dlt_list_idx': dbt.type_bigint(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        value as discount_id,
        _dlt_parent_id as invoice_dlt_id,
        _dlt_list_idx as list_index,
        _dlt_id as dlt_id
    from source
)

select * from final
