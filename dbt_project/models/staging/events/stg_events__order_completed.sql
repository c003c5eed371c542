{#- events.order_completed, renamed and cast. Grain: one row per message_id. -#}
with source as (
    {{ source_or_empty('events', 'order_completed', segment_source_columns({
        'event': dbt.type_string(),
        'event_text': dbt.type_string(),
        'order_id': dbt.type_string(),
        'invoice_number': dbt.type_string(),
        'total': dbt.type_float(),
        'revenue': dbt.type_float(),
        'subtotal': dbt.type_float(),
        'tax': dbt.type_float(),
        'discount': dbt.type_float(),
        'coupon': dbt.type_string(),
        'currency': dbt.type_string(),
        'products': dbt.type_string(),
        'stripe_customer_id': dbt.type_string(),
        'email': dbt.type_string(),
        'subscription_id': dbt.type_string()
    })) }}
),

final as (
    select
        {{ segment_renamed_columns('occurred_at') }},
        event as event_name,
        event_text,
        order_id,
        invoice_number,
        total,
        revenue,
        subtotal,
        tax,
        discount,
        coupon,
        currency,
        products,
        stripe_customer_id,
        email,
        subscription_id
    from source
)

select * from final
