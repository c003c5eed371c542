{#- events.pages, renamed and cast. Grain: one row per message_id. -#}
with source as (
    {{ source_or_empty('events', 'pages', segment_source_columns({
        'name': dbt.type_string(),
        'category': dbt.type_string(),
        'path': dbt.type_string(),
        'url': dbt.type_string(),
        'referrer': dbt.type_string(),
        'search': dbt.type_string(),
        'title': dbt.type_string()
    })) }}
),

final as (
    select
        {{ segment_renamed_columns('viewed_at') }},
        name as page_name,
        category as page_category,
        path,
        url,
        referrer,
        search,
        title
    from source
)

select * from final
