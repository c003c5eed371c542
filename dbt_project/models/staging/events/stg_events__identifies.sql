{#- events.identifies, renamed and cast. Grain: one row per message_id. -#}
with source as (
    {{ source_or_empty('events', 'identifies', segment_source_columns({
        'email': dbt.type_string(),
        'name': dbt.type_string(),
        'first_name': dbt.type_string(),
        'last_name': dbt.type_string(),
        'phone': dbt.type_string()
    })) }}
),

final as (
    select
        {{ segment_renamed_columns('identified_at') }},
        email,
        name,
        first_name,
        last_name,
        phone
    from source
)

select * from final
