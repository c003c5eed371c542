{#- Executive metrics by day (UTC date the invoice was paid) and currency, from the orders (paid Stripe
    invoices, customer_orders): revenue (totals, after discounts), gross revenue (subtotals), discounts,
    cost and margin from SKU unit costs (summed over the orders whose costs are all known; how many are
    not is counted), orders, ordering customers, new customers (their first paid order that day), orders
    with a coupon and the coupon usage rate. Every day from a currency's first to its last paid order
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
        sum(orders.subtotal) as gross_revenue,
        sum(orders.discount) as discounts,
        sum(orders.total) as revenue,
        sum(orders.cost) as cost,
        sum(orders.margin) as margin,
        sum(case when orders.margin is not null then orders.total else 0 end) as revenue_with_known_cost,
        sum(case when orders.margin is null then 1 else 0 end) as orders_without_cost,
        sum(case when orders.has_discount then 1 else 0 end) as orders_with_coupon
    from orders
    left join first_orders on first_orders.customer_id = orders.customer_id
    group by orders.paid_date, orders.currency
),

-- every day between a currency's first and last order
calendar as (
    select currency, cast(unnest(generate_series(min(paid_date), max(paid_date), interval 1 day)) as date) as order_date
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
        coalesce(daily.gross_revenue, 0) as gross_revenue,
        coalesce(daily.discounts, 0) as discounts,
        coalesce(daily.revenue, 0) as revenue,
        case when daily.orders is null then 0 else daily.cost end as cost,
        case when daily.orders is null then 0 else daily.margin end as margin,
        case when daily.revenue_with_known_cost > 0
             then cast(daily.margin as {{ float }}) / daily.revenue_with_known_cost end as margin_rate,
        coalesce(daily.orders_without_cost, 0) as orders_without_cost,
        cast(daily.revenue as {{ float }}) / daily.orders as average_order_value,
        coalesce(daily.orders_with_coupon, 0) as orders_with_coupon,
        cast(daily.orders_with_coupon as {{ float }}) / daily.orders as coupon_usage_rate
    from calendar
    left join daily on daily.order_date = calendar.order_date and daily.currency is not distinct from calendar.currency
)

select * from final
