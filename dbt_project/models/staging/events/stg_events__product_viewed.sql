{#- events.product_viewed, renamed and cast. Grain: one row per message_id. -#}
with source as (
    {{ source_or_empty('events', 'product_viewed', segment_source_columns({
        'event': dbt.type_string(),
        'event_text': dbt.type_string(),
        'product_id': dbt.type_string(),
        'sku': dbt.type_string(),
        'name': dbt.type_string(),
        'category': dbt.type_string(),
        'price': dbt.type_float(),
        'currency': dbt.type_string()
    })) }}
),

final as (
    select
        {{ segment_renamed_columns('occurred_at') }},
        event as event_name,
        event_text,
        product_id,
        sku,
        name as product_name,
        category as product_category,
        price,
        currency
    from source
)

select * from final
