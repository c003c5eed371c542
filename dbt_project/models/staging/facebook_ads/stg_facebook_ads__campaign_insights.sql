{#- facebook_ads.campaign_insights, renamed and cast. -#}
with source as (
    {{ source_or_empty('facebook_ads', 'campaign_insights', {
        'campaign_id': dbt.type_string(),
        'campaign_name': dbt.type_string(),
        'account_id': dbt.type_string(),
        'date_start': 'date',
        'date_stop': 'date',
        'spend': dbt.type_float(),
        'impressions': dbt.type_bigint(),
        'clicks': dbt.type_bigint(),
        '_dlt_load_id': dbt.type_string(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        campaign_id,
        campaign_name,
        account_id,
        date_start as date_day,
        date_stop,
        spend,
        impressions,
        clicks,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
