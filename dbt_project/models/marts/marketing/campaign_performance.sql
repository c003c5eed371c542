{#- Ad spend against attributed orders, by campaign: every UTM campaign (utm_source, utm_campaign) that an order was attributed to, and every Facebook campaign with spend. Spend,
    impressions and clicks are the Facebook daily insights summed over all days; a campaign matches its
    UTM tags when utm_source is `facebook` and utm_campaign equals the Facebook campaign name
    (case-insensitive, trimmed). For each attribution model (first_touch, last_touch, linear,
    position_based): attributed orders (sum of weights), attributed revenue, cost per order
    (spend / attributed orders) and return on ad spend (attributed revenue / spend); null when a
    divisor is 0. Money is in the reporting currency (var reporting_currency): attributed revenue as
    attribution_touchpoints converts it, and spend from the ad account's currency (var
    facebook_ads_currency) at the finance rate of its day when the two differ. Grain: one row per (utm_source, utm_campaign); utm_medium is the campaign's (the
    smallest, should its links disagree). -#}
{%- set models = ['first_touch', 'last_touch', 'linear', 'position_based'] -%}
{%- set float = dbt.type_float() -%}

with attribution as (
    select * from {{ ref('attribution_touchpoints') }}
),

{%- set reporting = var('reporting_currency', 'USD') | upper %}
{%- set ads_currency = var('facebook_ads_currency', 'USD') | upper %}
raw_insights as (
    select * from {{ ref('stg_facebook_ads__campaign_insights') }}
),

{%- if ads_currency != reporting %}
exchange_rates as (
    select * from {{ ref('exchange_rates') }}
),
{%- endif %}

-- spend in the reporting currency ({{ ads_currency }} -> {{ reporting }})
insights as (
    select
        raw_insights.*  exclude (spend),
        {%- if ads_currency == reporting %}
        raw_insights.spend
        {%- else %}
        raw_insights.spend * cast(rates.rate as {{ dbt.type_float() }}) as spend
        {%- endif %}
    from raw_insights
    {%- if ads_currency != reporting %}
    left join exchange_rates as rates
        on rates.base_currency = '{{ ads_currency }}'
        and rates.quote_currency = '{{ reporting }}'
        and (rates.valid_from is null or rates.valid_from <= raw_insights.date_day)
        and (rates.valid_to is null or raw_insights.date_day < rates.valid_to)
    {%- endif %}
),

attributed as (
    select
        coalesce(utm_source, '(none)') as utm_source,
        coalesce(utm_campaign, '(none)') as utm_campaign,
        min(utm_medium) as utm_medium,
        count(distinct order_id) as orders_touched,
        min(touched_at) as first_touched_at,
        max(touched_at) as last_touched_at
{%- for m in models %},
        sum(weight_{{ m }}) as attributed_orders_{{ m }},
        sum(attributed_revenue_{{ m }}) as attributed_revenue_{{ m }}
{%- endfor %}
    from attribution
    group by 1, 2
),

spend as (
    select
        'facebook' as utm_source,
        -- the campaign's landing pages are tagged utm_campaign=<campaign name>
        lower(trim(campaign_name)) as campaign_key,
        min(campaign_name) as campaign_name,
        min(campaign_id) as facebook_campaign_id,
        min(date_day) as first_spend_date,
        max(date_day) as last_spend_date,
        sum(spend) as spend,
        sum(impressions) as impressions,
        sum(clicks) as clicks
    from insights
    group by 1, 2
),

joined as (
    select
        coalesce(attributed.utm_source, spend.utm_source) as utm_source,
        attributed.utm_medium,
        coalesce(attributed.utm_campaign, spend.campaign_name) as utm_campaign,
        spend.facebook_campaign_id,
        spend.first_spend_date,
        spend.last_spend_date,
        '{{ reporting }}' as currency,
        coalesce(spend.spend, 0) as spend,
        coalesce(spend.impressions, 0) as impressions,
        coalesce(spend.clicks, 0) as clicks,
        coalesce(attributed.orders_touched, 0) as orders_touched
{%- for m in models %},
        coalesce(attributed.attributed_orders_{{ m }}, 0) as attributed_orders_{{ m }},
        coalesce(attributed.attributed_revenue_{{ m }}, 0) as attributed_revenue_{{ m }}
{%- endfor %}
    from attributed
    full outer join spend
        on spend.utm_source = attributed.utm_source
        and spend.campaign_key = lower(trim(attributed.utm_campaign))
),

final as (
    select
        *
{%- for m in models %},
        case when attributed_orders_{{ m }} > 0
             then cast(spend as {{ float }}) / attributed_orders_{{ m }} end as cost_per_order_{{ m }},
        case when spend > 0
             then cast(attributed_revenue_{{ m }} as {{ float }}) / spend end as return_on_ad_spend_{{ m }}
{%- endfor %}
    from joined
)

select * from final
