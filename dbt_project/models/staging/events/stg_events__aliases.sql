{#- events.aliases, renamed and cast. Grain: one row per message_id. -#}
with source as (
    {{ source_or_empty('events', 'aliases', segment_source_columns({
        'previous_id': dbt.type_string()
    })) }}
),

final as (
    select
        {{ segment_renamed_columns('aliased_at') }},
        previous_id
    from source
)

select * from final
