{#- stripe.invoices__lines, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'invoices__lines', {
        'id': dbt.type_string(),
        'invoice_id': dbt.type_string(),
        'description': dbt.type_string(),
        'amount': dbt.type_bigint(),
        'subtotal': dbt.type_bigint(),
        'currency': dbt.type_string(),
        'quantity': dbt.type_bigint(),
        'discountable': dbt.type_boolean(),
        'pricing__price_details': dbt.type_string(),
        'pricing__unit_amount_decimal': dbt.type_string(),
        'period__start': dbt.type_bigint(),
        'period__end': dbt.type_bigint(),
        'parent__type': dbt.type_string(),
        'livemode': dbt.type_boolean(),
        '_dlt_parent_id': dbt.type_string(),
        '_dlt_list_idx': dbt.type_bigint(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        id as line_item_id,
        invoice_id,
        description,
        amount,
        subtotal,
        currency,
        quantity,
        discountable as is_discountable,
        {{ json_extract_text('pricing__price_details', '$.price') }} as price_id,
        {{ json_extract_text('pricing__price_details', '$.product') }} as product_id,
        {{ dbt.safe_cast('pricing__unit_amount_decimal', dbt.type_numeric()) }} as unit_amount_decimal,
        {{ epoch_to_timestamptz('period__start') }} as period_start_at,
        {{ epoch_to_timestamptz('period__end') }} as period_end_at,
        parent__type as parent_type,
        livemode as is_livemode,
        _dlt_parent_id as invoice_dlt_id,
        _dlt_list_idx as list_index,
        _dlt_id as dlt_id
    from source
)

select * from final
