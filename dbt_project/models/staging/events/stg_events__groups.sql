{#- events.groups, renamed and cast. Grain: one row per message_id. -#}
with source as (
    {{ source_or_empty('events', 'groups', segment_source_columns({
        'group_id': dbt.type_string(),
        'name': dbt.type_string()
    })) }}
),

final as (
    select
        {{ segment_renamed_columns('grouped_at') }},
        group_id,
        name as group_name
    from source
)

select * from final
