{#- stripe.prices, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'prices', {
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
        'active': dbt.type_boolean(),
        'created': dbt.type_bigint(),
        'livemode': dbt.type_boolean(),
        'deleted': dbt.type_boolean(),
        '_snapshot_at': dbt.type_bigint(),
        '_dlt_load_id': dbt.type_string(),
        '_dlt_id': dbt.type_string()
    }) }}
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
        {{ epoch_to_timestamptz('created') }} as created_at,
        livemode as is_livemode,
        deleted as is_deleted,
        {{ epoch_to_timestamptz('_snapshot_at') }} as snapshot_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
