{#- Do demographic segments use coupons at a higher rate? Coupon usage (share of paid orders with a
    discount) by age band (age on the dbt var `as_of`, from customers) and customer type (HubSpot
    `customer_type`), against everyone else: rate_ratio_to_others and a two-proportion z score
    (|z| > 1.96: the difference is unlikely to be chance at 95%). Age bands from var `coupon_age_bands`
    (lower bounds, default 18, 25, 35, 45, 55, 65); no age or type is `unknown`.
    Grain: one row per (age_band, customer_type). -#}
{%- set bounds = var('coupon_age_bands', [18, 25, 35, 45, 55, 65]) -%}
{%- set float = dbt.type_float() -%}

with customers as (
    select customer_id, age, customer_type from {{ ref('customers') }}
),

orders as (
    select customer_id, has_discount from {{ ref('customer_orders') }}
    where customer_id is not null
),

segmented as (
    select
        customers.customer_id,
        case
            when customers.age is null then 'unknown'
            when customers.age < {{ bounds[0] }} then 'under {{ bounds[0] }}'
{%- for lower in bounds[:-1] %}
            when customers.age < {{ bounds[loop.index] }} then '{{ lower }}-{{ bounds[loop.index] - 1 }}'
{%- endfor %}
            else '{{ bounds[-1] }}+'
        end as age_band,
        coalesce(lower(customers.customer_type), 'unknown') as customer_type
    from customers
),

customer_orders as (
    select
        customer_id,
        count(*) as orders,
        sum(case when has_discount then 1 else 0 end) as orders_with_coupon
    from orders
    group by customer_id
),

segments as (
    select
        segmented.age_band,
        segmented.customer_type,
        count(*) as customers,
        count(customer_orders.customer_id) as customers_with_orders,
        sum(case when customer_orders.orders_with_coupon > 0 then 1 else 0 end) as customers_using_coupons,
        coalesce(sum(customer_orders.orders), 0) as orders,
        coalesce(sum(customer_orders.orders_with_coupon), 0) as orders_with_coupon
    from segmented
    left join customer_orders on customer_orders.customer_id = segmented.customer_id
    group by segmented.age_band, segmented.customer_type
),

totals as (
    select sum(orders) as all_orders, sum(orders_with_coupon) as all_orders_with_coupon from segments
),

compared as (
    select
        segments.*,
        case when segments.orders > 0
             then cast(segments.orders_with_coupon as {{ float }}) / segments.orders end as coupon_usage_rate,
        totals.all_orders - segments.orders as other_orders,
        totals.all_orders_with_coupon - segments.orders_with_coupon as other_orders_with_coupon,
        case when totals.all_orders > 0
             then cast(totals.all_orders_with_coupon as {{ float }}) / totals.all_orders end as overall_coupon_usage_rate
    from segments
    cross join totals
),

final as (
    select
        age_band,
        customer_type,
        customers,
        customers_with_orders,
        customers_using_coupons,
        case when customers_with_orders > 0
             then cast(customers_using_coupons as {{ float }}) / customers_with_orders end as customer_coupon_rate,
        orders,
        orders_with_coupon,
        coupon_usage_rate,
        overall_coupon_usage_rate,
        case when other_orders > 0 then cast(other_orders_with_coupon as {{ float }}) / other_orders end as others_coupon_usage_rate,
        case when other_orders > 0 and other_orders_with_coupon > 0 and orders > 0
             then coupon_usage_rate / (cast(other_orders_with_coupon as {{ float }}) / other_orders) end as rate_ratio_to_others,
        -- pooled two-proportion z test of this segment against all other orders
        case when orders > 0 and other_orders > 0
                  and overall_coupon_usage_rate > 0 and overall_coupon_usage_rate < 1
             then (coupon_usage_rate - cast(other_orders_with_coupon as {{ float }}) / other_orders)
                  / sqrt(overall_coupon_usage_rate * (1 - overall_coupon_usage_rate)
                         * (1.0 / orders + 1.0 / other_orders)) end as z_score_vs_others
    from compared
)

select * from final
