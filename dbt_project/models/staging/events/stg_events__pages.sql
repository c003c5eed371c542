with source as (
    select * from {{ source('events', 'pages') }}
),

final as (
    select
        id as message_id,
        nullif(trim(anonymous_id), '') as anonymous_id,
        nullif(trim(user_id), '') as user_id,
        name as page_name,
        cast("timestamp" as timestamp) as viewed_at,
        cast(received_at as timestamp) as received_at,
        source
    from source
)

select * from final
