{#- finance.exchange_rates, renamed and cast: one base_currency is worth `rate` quote_currency from
    effective_date on. -#}
with source as (
    {{ source_or_empty('finance', 'exchange_rates', {
        'base_currency': dbt.type_string(),
        'quote_currency': dbt.type_string(),
        'rate': 'decimal(28, 12)',
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
        upper(base_currency) as base_currency,
        upper(quote_currency) as quote_currency,
        rate,
        effective_date,
        source_file,
        line_number,
        file_modified_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
