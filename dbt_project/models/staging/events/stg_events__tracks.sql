with source as (
    select * from {{ source('events', 'tracks') }}
),

final as (
    select
        id as message_id,
        nullif(trim(anonymous_id), '') as anonymous_id,
        nullif(trim(user_id), '') as user_id,
        event as event_name,
        event_text,
        cast("timestamp" as timestamp) as event_at,
        cast(received_at as timestamp) as received_at,
        source
    from source
)

select * from final
