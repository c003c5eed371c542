{#- Each customer's orders per currency, as of as_of (macro as_of_at), never converted or added across
    currencies: lifetime orders, value (invoice totals), discounts and margin (over orders whose cost
    is known) in integer minor units and as exact decimals in the currency's major unit, and the orders
    paid in (as_of - 365 days, as_of]. Grain: one row per (customer_id, currency). -#}
{%- set as_of = as_of_at() -%}
{%- set as_of_sql = timestamp_literal(as_of) -%}
{%- set year_ago_sql = timestamp_literal(as_of - modules.datetime.timedelta(days=365)) -%}

with orders as (
    select * from {{ ref('customer_orders') }}
    where customer_id is not null
      and paid_at <= {{ as_of_sql }}
),

totals as (
    select
        customer_id,
        currency,
        min(currency_decimals) as currency_decimals,
        count(*) as lifetime_orders,
        sum(case when paid_at > {{ year_ago_sql }} then 1 else 0 end) as orders_last_365d,
        sum(total_minor) as lifetime_value_minor,
        sum(case when paid_at > {{ year_ago_sql }} then total_minor else 0 end) as value_last_365d_minor,
        sum(discount_minor) as discounts_minor,
        sum(margin_minor) as margin_minor,
        sum(case when margin_minor is null then 1 else 0 end) as orders_without_cost,
        min(paid_at) as first_order_at,
        max(paid_at) as last_order_at
    from orders
    group by customer_id, currency
),

final as (
    select
        customer_id,
        currency,
        currency_decimals,
        {{ as_of_sql }} as as_of_at,
        lifetime_orders,
        orders_last_365d,
        lifetime_value_minor,
        {{ minor_to_major('lifetime_value_minor', 'currency_decimals') }} as lifetime_value,
        value_last_365d_minor,
        {{ minor_to_major('value_last_365d_minor', 'currency_decimals') }} as value_last_365d,
        discounts_minor,
        {{ minor_to_major('discounts_minor', 'currency_decimals') }} as discounts,
        margin_minor,
        {{ minor_to_major('margin_minor', 'currency_decimals') }} as margin,
        orders_without_cost,
        first_order_at,
        last_order_at
    from totals
)

select * from final
