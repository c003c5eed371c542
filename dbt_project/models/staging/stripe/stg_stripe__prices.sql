{#- stripe.prices, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'prices', stripe_object_columns({
        'id': dbt.type_string(),
        'product': dbt.type_string(),
        'unit_amount': dbt.type_bigint(),
        'unit_amount_decimal': dbt.type_string(),
        'currency': dbt.type_string(),
        'type': dbt.type_string(),
        'billing_scheme': dbt.type_string(),
        'tax_behavior': dbt.type_string(),
        'lookup_key': dbt.type_string(),
        'metadata__sku': dbt.type_string(),
        'active': dbt.type_boolean()
    })) }}
),

final as (
    select
        id as price_id,
        product as product_id,
        unit_amount,
        {{ dbt.safe_cast('unit_amount_decimal', dbt.type_numeric()) }} as unit_amount_decimal,
        currency,
        type as price_type,
        billing_scheme,
        tax_behavior,
        lookup_key,
        metadata__sku as sku,
        active as is_active,
        {{ stripe_object_renamed_columns() }}
    from source
)

select * from final
