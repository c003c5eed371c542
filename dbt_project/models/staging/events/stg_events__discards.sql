{#- events._discards, renamed and cast. Grain: one row per discarded line or value (no natural key). -#}
with source as (
    {{ source_or_empty('events', '_discards', {
        'partition_date': 'date',
        'source': dbt.type_string(),
        'source_file': dbt.type_string(),
        'message_id': dbt.type_string(),
        'table': dbt.type_string(),
        'column': dbt.type_string(),
        'value': dbt.type_string(),
        'reason': dbt.type_string(),
        'discarded_at': type_timestamptz()
    }) }}
),

final as (
    select
        partition_date,
        source,
        source_file,
        message_id,
        {{ adapter.quote('table') }} as table_name,
        {{ adapter.quote('column') }} as column_name,
        value as discarded_value,
        reason,
        discarded_at
    from source
)

select * from final
