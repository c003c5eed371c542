{#- events.tracks, renamed and cast. Grain: one row per message_id. -#}
with source as (
    {{ source_or_empty('events', 'tracks', segment_source_columns({
        'event': dbt.type_string(),
        'event_text': dbt.type_string()
    })) }}
),

final as (
    select
        {{ segment_renamed_columns('occurred_at') }},
        event as event_name,
        event_text
    from source
)

select * from final
