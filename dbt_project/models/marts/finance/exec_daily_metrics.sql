{#- Executive metrics by day (UTC date the invoice was paid) and currency, from the orders (paid Stripe
    invoices, customer_orders): revenue (totals, after discounts), gross revenue (subtotals), discounts,
    cost and margin from SKU unit costs (summed over the orders whose costs are all known; how many are
    not is counted), orders, ordering customers, new customers (their first paid order that day), orders
    with a coupon and the coupon usage rate. Money is summed per currency in integer minor units
    (*_minor) and shown as exact decimals in the currency's major unit; currencies are never added
    together (revenue_reporting converts each order into the reporting currency). Every day from a currency's first to its last paid order
    has a row, zero on days without orders (rates null), so charts and moving averages see the quiet days.
    DuckDB SQL (generate_series over dates). Grain: one row per (order_date, currency). -#}
{%- set float = dbt.type_float() -%}

with orders as (
    select * from {{ ref('customer_orders') }}
),

first_orders as (
    select customer_id, min(paid_date) as first_order_date
    from orders
    where customer_id is not null
    group by customer_id
),

daily as (
    select
        orders.paid_date as order_date,
        orders.currency,
        count(*) as orders,
        count(distinct orders.customer_id) as customers_ordering,
        count(distinct case when first_orders.first_order_date = orders.paid_date then orders.customer_id end) as new_customers,
        min(orders.currency_decimals) as currency_decimals,
        sum(orders.subtotal_minor) as gross_revenue_minor,
        sum(orders.discount_minor) as discounts_minor,
        sum(orders.total_minor) as revenue_minor,
        sum(orders.cost_minor) as cost_minor,
        sum(orders.margin_minor) as margin_minor,
        sum(case when orders.margin_minor is not null then orders.total_minor else 0 end) as revenue_with_known_cost_minor,
        sum(case when orders.margin_minor is null then 1 else 0 end) as orders_without_cost,
        sum(orders.total_reporting_minor) as revenue_reporting_minor,
        sum(case when orders.total_reporting_minor is null then 1 else 0 end) as orders_without_rate,
        min(orders.reporting_currency) as reporting_currency,
        sum(case when orders.has_discount then 1 else 0 end) as orders_with_coupon
    from orders
    left join first_orders on first_orders.customer_id = orders.customer_id
    group by orders.paid_date, orders.currency
),

-- every day between a currency's first and last order
calendar as (
    select currency, min(currency_decimals) as currency_decimals,
           cast(unnest(generate_series(min(paid_date), max(paid_date), interval 1 day)) as date) as order_date
    from orders
    where paid_date is not null
    group by currency
),

final as (
    select
        calendar.order_date,
        calendar.currency,
        coalesce(daily.orders, 0) as orders,
        coalesce(daily.customers_ordering, 0) as customers_ordering,
        coalesce(daily.new_customers, 0) as new_customers,
        calendar.currency_decimals,
        coalesce(daily.gross_revenue_minor, 0) as gross_revenue_minor,
        coalesce(daily.discounts_minor, 0) as discounts_minor,
        coalesce(daily.revenue_minor, 0) as revenue_minor,
        case when daily.orders is null then 0 else daily.cost_minor end as cost_minor,
        case when daily.orders is null then 0 else daily.margin_minor end as margin_minor,
        {{ minor_to_major('coalesce(daily.gross_revenue_minor, 0)', 'calendar.currency_decimals') }} as gross_revenue,
        {{ minor_to_major('coalesce(daily.discounts_minor, 0)', 'calendar.currency_decimals') }} as discounts,
        {{ minor_to_major('coalesce(daily.revenue_minor, 0)', 'calendar.currency_decimals') }} as revenue,
        {{ minor_to_major('case when daily.orders is null then 0 else daily.cost_minor end', 'calendar.currency_decimals') }} as cost,
        {{ minor_to_major('case when daily.orders is null then 0 else daily.margin_minor end', 'calendar.currency_decimals') }} as margin,
        case when daily.revenue_with_known_cost_minor > 0
             then cast(daily.margin_minor as {{ float }}) / daily.revenue_with_known_cost_minor end as margin_rate,
        coalesce(daily.orders_without_cost, 0) as orders_without_cost,
        cast({{ minor_to_major('daily.revenue_minor', 'calendar.currency_decimals') }} as {{ float }}) / daily.orders as average_order_value,
        '{{ var("reporting_currency", "USD") | upper }}' as reporting_currency,
        case when daily.orders is null then 0 when daily.orders_without_rate = 0
             then {{ minor_to_major('daily.revenue_reporting_minor', iso_decimals_of(var('reporting_currency', 'USD'))) }} end as revenue_reporting,
        coalesce(daily.orders_with_coupon, 0) as orders_with_coupon,
        cast(daily.orders_with_coupon as {{ float }}) / daily.orders as coupon_usage_rate
    from calendar
    left join daily on daily.order_date = calendar.order_date and daily.currency is not distinct from calendar.currency
)

select * from final
