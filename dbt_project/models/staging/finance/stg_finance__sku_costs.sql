{#- finance.sku_costs, renamed and cast. -#}
with source as (
    {{ source_or_empty('finance', 'sku_costs', {
        'sku': dbt.type_string(),
        'unit_cost': dbt.type_numeric(),
        'currency': dbt.type_string(),
        'effective_date': 'date',
        'source_file': dbt.type_string(),
        'line_number': dbt.type_bigint(),
        'file_modified_at': type_timestamptz(),
        '_dlt_load_id': dbt.type_string(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        sku,
        unit_cost,
        currency,
        effective_date,
        source_file,
        line_number,
        file_modified_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
