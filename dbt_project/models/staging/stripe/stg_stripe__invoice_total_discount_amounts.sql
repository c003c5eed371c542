{#- stripe.invoices__total_discount_amounts, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'invoices__total_discount_amounts', {
        'amount': dbt.type_bigint(),
        'discount': dbt.type_string(),
        '_dlt_parent_id': dbt.type_string(),
        '_dlt_list_idx': dbt.type_bigint(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        amount as discount_amount,
        discount as discount_id,
        _dlt_parent_id as invoice_dlt_id,
        _dlt_list_idx as list_index,
        _dlt_id as dlt_id
    from source
)

select * from final
