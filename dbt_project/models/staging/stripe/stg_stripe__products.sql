{#- stripe.products, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'products', {
        'id': dbt.type_string(),
        'name': dbt.type_string(),
        'description': dbt.type_string(),
        'metadata__sku': dbt.type_string(),
        'metadata__category': dbt.type_string(),
        'default_price': dbt.type_string(),
        'type': dbt.type_string(),
        'active': dbt.type_boolean(),
        'shippable': dbt.type_boolean(),
        'updated': dbt.type_bigint(),
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
        {{ epoch_to_timestamptz('created') }} as created_at,
        livemode as is_livemode,
        deleted as is_deleted,
        {{ epoch_to_timestamptz('_snapshot_at') }} as snapshot_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
