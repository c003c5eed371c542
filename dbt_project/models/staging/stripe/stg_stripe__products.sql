{#- stripe.products, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'products', stripe_object_columns({
        'id': dbt.type_string(),
        'name': dbt.type_string(),
        'description': dbt.type_string(),
        'metadata__sku': dbt.type_string(),
        'metadata__category': dbt.type_string(),
        'default_price': dbt.type_string(),
        'type': dbt.type_string(),
        'active': dbt.type_boolean(),
        'shippable': dbt.type_boolean(),
        'updated': dbt.type_bigint()
    })) }}
),

final as (
    select
        id as product_id,
        name as product_name,
        description,
        metadata__sku as sku,
        metadata__category as category,
        default_price as default_price_id,
        type as product_type,
        active as is_active,
        shippable as is_shippable,
        {{ epoch_to_timestamptz('updated') }} as updated_at,
        {{ stripe_object_renamed_columns() }}
    from source
)

select * from final
