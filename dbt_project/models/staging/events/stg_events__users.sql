{#- events.users, renamed and cast. Grain: one row per user_id. -#}
with source as (
    {{ source_or_empty('events', 'users', {
        'id': dbt.type_string(),
        'anonymous_id': dbt.type_string(),
        'received_at': type_timestamptz(),
        'uuid_ts': type_timestamptz(),
        'source': dbt.type_string(),
        'email': dbt.type_string(),
        'name': dbt.type_string(),
        'first_name': dbt.type_string(),
        'last_name': dbt.type_string(),
        'phone': dbt.type_string()
    }) }}
),

final as (
    select
        id as user_id,
        anonymous_id,
        email,
        name,
        first_name,
        last_name,
        phone,
        source,
        received_at,
        uuid_ts as loaded_at
    from source
)

select * from final
