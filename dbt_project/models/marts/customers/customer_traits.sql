{#- Computed traits for activation, evaluated at one point in time, as_of (macro as_of_at: the dbt var
    `as_of`, else GROWTH_STACK_AS_OF, else the moment of the build, UTC), from data up to and including
    as_of, so re-running for the same as_of gives the same answer.
    is_high_value = all three criteria (thresholds are dbt vars):
      orders:   at least high_value_min_orders (5) paid Stripe invoices paid in (as_of - 365 days, as_of]
                whose own total is over high_value_min_order_total (100.00) in the invoice's currency,
                compared in integer minor units (each purchase counts on its own; nothing is added up);
      age:      completed years on as_of's UTC date (from HubSpot date_of_birth) between high_value_min_age
                (25) and high_value_max_age (45), both inclusive;
      activity: at least one page view in each of the high_value_active_weeks (4) complete Monday-Sunday
                weeks before the week that contains as_of.
    The rule's thresholds and tests live in macros/high_value.sql, shared with high_value_customers_daily
    (the same rule at the end of every day).
    lifetime_value and margin are in the reporting currency (var reporting_currency), each invoice
    converted at the finance rate of its paid date; null when an invoice up to as_of has no rate.
    Grain: one row per customer_id. -#}
{%- set as_of = as_of_at() -%}
{%- set as_of_date = as_of.date() -%}
{%- set rule = high_value_rule() -%}
{%- set min_orders = rule.min_orders -%}
{%- set active_weeks = rule.active_weeks -%}
{%- set reporting = var('reporting_currency', 'USD') | upper -%}
{%- set reporting_decimals = iso_decimals_of(reporting) -%}
{#- the Sunday before as_of's week ends the newest complete week; the window starts active_weeks Mondays earlier -#}
{%- set last_sunday = as_of_date - modules.datetime.timedelta(days=as_of_date.weekday() + 1) -%}
{%- set weeks_start = last_sunday - modules.datetime.timedelta(days=7 * active_weeks - 1) -%}
{%- set as_of_sql = timestamp_literal(as_of) -%}
{%- set year_ago_sql = timestamp_literal(as_of - modules.datetime.timedelta(days=rule.order_window_days)) -%}
{%- set numeric = dbt.type_numeric() -%}

with customers as (
    select * from {{ ref('customers') }}
),

orders as (
    select * from {{ ref('customer_orders') }}
    where customer_id is not null
      and paid_at <= {{ as_of_sql }}
),

activity as (
    select * from {{ ref('int_app_messages_attributed') }}
    where occurred_at <= {{ as_of_sql }}
),

-- each invoice against the minimum in its own currency, in minor units (exact decimals, no float)
orders_judged as (
    select
        *,
        paid_at > {{ year_ago_sql }} as is_last_365d,
        {{ high_value_is_over_min_total('total_minor', 'currency', 'currency_decimals') }} as is_over_min_total
    from orders
),

order_traits as (
    select
        customer_id,
        count(*) as lifetime_orders,
        sum(case when is_last_365d then 1 else 0 end) as orders_last_365d,
        sum(case when is_last_365d and is_over_min_total then 1 else 0 end) as high_value_orders_last_365d,
        sum(case when has_discount then 1 else 0 end) as orders_with_discount,
        sum(total_reporting_minor) as lifetime_value_minor,
        sum(case when total_reporting_minor is null then 1 else 0 end) as orders_without_rate,
        sum(margin_reporting_minor) as margin_minor,
        sum(case when margin_minor is not null and margin_reporting_minor is null then 1 else 0 end) as margins_without_rate
    from orders_judged
    group by customer_id
),

-- the weeks with a page view among the {{ active_weeks }} complete weeks before as_of's week
page_weeks as (
    select
        customer_id,
        count(distinct {{ high_value_week_start('occurred_date') }}) as active_weeks
    from activity
    where message_type = 'page'
      and occurred_date >= {{ date_literal(weeks_start) }}
      and occurred_date <= {{ date_literal(last_sunday) }}
    group by customer_id
),

last_seen as (
    select customer_id, max(occurred_date) as last_seen_date
    from activity
    group by customer_id
),

ages as (
    select
        customer_id,
        {{ completed_years('date_of_birth', date_literal(as_of_date)) }} as age
    from customers
),

criteria as (
    select
        customers.customer_id,
        coalesce(order_traits.orders_last_365d, 0) as orders_last_365d,
        coalesce(order_traits.high_value_orders_last_365d, 0) as high_value_orders_last_365d,
        ages.age,
        coalesce(page_weeks.active_weeks, 0) as active_weeks,
        coalesce(order_traits.high_value_orders_last_365d, 0) >= {{ min_orders }} as meets_orders_criterion,
        {{ high_value_meets_age('ages.age') }} as meets_age_criterion,
        coalesce(page_weeks.active_weeks, 0) >= {{ active_weeks }} as meets_activity_criterion
    from customers
    left join order_traits on order_traits.customer_id = customers.customer_id
    left join ages on ages.customer_id = customers.customer_id
    left join page_weeks on page_weeks.customer_id = customers.customer_id
),

final as (
    select
        customers.customer_id,
        {{ as_of_sql }} as as_of_at,
        {{ date_literal(as_of_date) }} as as_of_date,
        criteria.meets_orders_criterion and criteria.meets_age_criterion and criteria.meets_activity_criterion as is_high_value,
        criteria.meets_orders_criterion,
        criteria.meets_age_criterion,
        criteria.meets_activity_criterion,
        criteria.orders_last_365d,
        criteria.high_value_orders_last_365d,
        criteria.age,
        criteria.active_weeks,
        customers.lead_qualified,
        customers.customer_type,
        coalesce(order_traits.lifetime_orders, 0) as lifetime_orders,
        '{{ reporting }}' as reporting_currency,
        case when coalesce(order_traits.orders_without_rate, 0) = 0
             then {{ minor_to_major('coalesce(order_traits.lifetime_value_minor, 0)', reporting_decimals) }} end as lifetime_value,
        case when coalesce(order_traits.margins_without_rate, 0) = 0
             then {{ minor_to_major('order_traits.margin_minor', reporting_decimals) }} end as margin,
        coalesce(order_traits.orders_without_rate, 0) as orders_without_exchange_rate,
        case when order_traits.lifetime_orders > 0
             then cast(order_traits.orders_with_discount as {{ numeric }}) / order_traits.lifetime_orders end as coupon_usage_rate,
        last_seen.last_seen_date,
        {{ dbt.datediff('last_seen.last_seen_date', date_literal(as_of_date), 'day') }} as days_since_last_seen
    from customers
    inner join criteria on criteria.customer_id = customers.customer_id
    left join order_traits on order_traits.customer_id = customers.customer_id
    left join last_seen on last_seen.customer_id = customers.customer_id
)

select * from final
