{#- events.screens, renamed and cast. Grain: one row per message_id. -#}
with source as (
    {{ source_or_empty('events', 'screens', segment_source_columns({
        'name': dbt.type_string(),
        'category': dbt.type_string()
    })) }}
),

final as (
    select
        {{ segment_renamed_columns('viewed_at') }},
        name as screen_name,
        category as screen_category
    from source
)

select * from final
