{#- events.checkout_started, renamed and cast. Grain: one row per message_id. -#}
with source as (
    {{ source_or_empty('events', 'checkout_started', segment_source_columns({
        'event': dbt.type_string(),
        'event_text': dbt.type_string(),
        'checkout_id': dbt.type_string(),
        'order_id': dbt.type_string(),
        'value': dbt.type_float(),
        'revenue': dbt.type_float(),
        'currency': dbt.type_string(),
        'coupon': dbt.type_string(),
        'products': dbt.type_string()
    })) }}
),

final as (
    select
        {{ segment_renamed_columns('occurred_at') }},
        event as event_name,
        event_text,
        checkout_id,
        order_id,
        value,
        revenue,
        currency,
        coupon,
        products
    from source
)

select * from final
