{#- finance.discards, renamed and cast. -#}
with source as (
    {{ source_or_empty('finance', 'discards', {
        'source_file': dbt.type_string(),
        'line_number': dbt.type_bigint(),
        'raw': dbt.type_string(),
        'reason': dbt.type_string(),
        'file_modified_at': type_timestamptz(),
        '_dlt_load_id': dbt.type_string(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        source_file,
        line_number,
        raw as raw_line,
        reason,
        file_modified_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
