{#- events.email_opened, renamed and cast. Grain: one row per message_id. -#}
with source as (
    {{ source_or_empty('events', 'email_opened', segment_source_columns({
        'event': dbt.type_string(),
        'event_text': dbt.type_string(),
        'campaign_id': dbt.type_string(),
        'action_id': dbt.type_string(),
        'broadcast_id': dbt.type_string(),
        'newsletter_id': dbt.type_string(),
        'subject': dbt.type_string(),
        'delivery_id': dbt.type_string(),
        'recipient': dbt.type_string(),
        'email': dbt.type_string(),
        'cio_id': dbt.type_string()
    })) }}
),

final as (
    select
        {{ segment_renamed_columns('occurred_at') }},
        event as event_name,
        event_text,
        campaign_id,
        action_id,
        broadcast_id,
        newsletter_id,
        subject,
        delivery_id,
        recipient,
        email,
        cio_id
    from source
)

select * from final
