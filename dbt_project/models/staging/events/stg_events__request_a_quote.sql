{#- events.request_a_quote, renamed and cast. Grain: one row per message_id. -#}
with source as (
    {{ source_or_empty('events', 'request_a_quote', segment_source_columns({
        'event': dbt.type_string(),
        'event_text': dbt.type_string(),
        'product_id': dbt.type_string(),
        'sku': dbt.type_string(),
        'quantity': dbt.type_bigint(),
        'company': dbt.type_string()
    })) }}
),

final as (
    select
        {{ segment_renamed_columns('occurred_at') }},
        event as event_name,
        event_text,
        product_id,
        sku,
        quantity,
        company
    from source
)

select * from final
