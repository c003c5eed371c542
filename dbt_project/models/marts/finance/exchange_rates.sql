{#- The finance team's exchange rates as periods: from valid_from (inclusive) to valid_to (exclusive,
    null = still valid) one base_currency is worth `rate` quote_currency. A re-exported date wins by
    file time. Each quoted pair also yields its inverse (1 / rate, 12 decimals) for the dates the
    finance team did not quote that direction themselves. As for SKU costs, the first known rate of a
    pair also covers earlier dates (valid_from null). No triangulation through a third currency.
    Grain: one row per (base_currency, quote_currency, effective_date). -#}

with rates as (
    select * from {{ ref('stg_finance__exchange_rates') }}
    where rate > 0 and base_currency <> quote_currency
),

deduplicated as (
    select base_currency, quote_currency, rate, effective_date, source_file
    from (
        select
            *,
            row_number() over (partition by base_currency, quote_currency, effective_date
                               order by file_modified_at desc, source_file desc, line_number desc) as rank_in_date
        from rates
    ) as ranked
    where rank_in_date = 1
),

both_directions as (
    select base_currency, quote_currency, rate, effective_date, source_file, false as is_inverse
    from deduplicated
    union all
    select inverse.quote_currency, inverse.base_currency,
           cast(1 / cast(inverse.rate as double) as decimal(28, 12)),
           inverse.effective_date, inverse.source_file, true
    from deduplicated as inverse
    where not exists (
        select 1 from deduplicated as direct
        where direct.base_currency = inverse.quote_currency
          and direct.quote_currency = inverse.base_currency
          and direct.effective_date = inverse.effective_date
    )
),

final as (
    select
        base_currency,
        quote_currency,
        rate,
        effective_date,
        case when row_number() over (partition by base_currency, quote_currency order by effective_date) = 1
             then null else effective_date end as valid_from,
        lead(effective_date) over (partition by base_currency, quote_currency order by effective_date) as valid_to,
        is_inverse,
        source_file
    from both_directions
)

select * from final
