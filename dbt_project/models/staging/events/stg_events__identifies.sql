with source as (
    select * from {{ source('events', 'identifies') }}
),

final as (
    select
        id as message_id,
        nullif(trim(anonymous_id), '') as anonymous_id,
        nullif(trim(user_id), '') as user_id,
        cast("timestamp" as timestamp) as identified_at,
        cast(received_at as timestamp) as received_at,
        source
    from source
)

select * from final
