{#- Executive metrics by day (UTC date the invoice was paid) and currency, from the orders (paid Stripe
    invoices, customer_orders): revenue (totals, after discounts), gross revenue (subtotals), discounts,
    cost and margin from SKU unit costs (summed over the orders whose costs are all known; how many are
    not is counted), orders, ordering customers, new customers (their first paid order that day), orders
    with a coupon and the coupon usage rate. Grain: one row per (order_date, currency), days with orders. -#}
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

final as (
    select
        order_date,
        currency,
        orders,
        customers_ordering,
        new_customers,
        gross_revenue,
        discounts,
        revenue,
        cost,
        margin,
        case when revenue_with_known_cost > 0
             then cast(margin as {{ float }}) / revenue_with_known_cost end as margin_rate,
        orders_without_cost,
        cast(revenue as {{ float }}) / orders as average_order_value,
        orders_with_coupon,
        cast(orders_with_coupon as {{ float }}) / orders as coupon_usage_rate
    from daily
)

select * from final
