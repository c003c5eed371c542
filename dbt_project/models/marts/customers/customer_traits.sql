{#- Computed traits for activation, evaluated as of the dbt var `as_of` (YYYY-MM-DD; empty = today, UTC)
    from data dated before as_of, so re-running for the same as_of gives the same answer.
    is_high_value = all three criteria (thresholds are dbt vars):
      orders:   count of paid Stripe invoices with paid date in [as_of - 365 days, as_of) >= high_value_min_orders (5)
                AND the sum of their totals > high_value_min_total (100.00; strictly greater);
      age:      completed years on as_of (from HubSpot date_of_birth) between high_value_min_age (25) and
                high_value_max_age (45), both inclusive;
      activity: at least one page view in each of the high_value_active_weeks (4) complete Monday-Sunday
                weeks that end on or before the Sunday before as_of (the week holding as_of never counts).
    Grain: one row per customer_id. -#}
{%- set as_of = (var('as_of') or modules.datetime.datetime.now(modules.pytz.utc).date().isoformat()) | string -%}
{%- if not modules.re.match('^[0-9]{4}-[0-9]{2}-[0-9]{2}$', as_of) -%}
    {{ exceptions.raise_compiler_error("The dbt var as_of must be a date written YYYY-MM-DD (or empty for today), not '" ~ as_of ~ "'.") }}
{%- endif -%}
{%- set min_orders = var('high_value_min_orders', 5) | int -%}
{%- set min_total = var('high_value_min_total', 100.00) | float -%}
{%- set min_age = var('high_value_min_age', 25) | int -%}
{%- set max_age = var('high_value_max_age', 45) | int -%}
{%- set active_weeks = var('high_value_active_weeks', 4) | int -%}
{%- set as_of_date = modules.datetime.date.fromisoformat(as_of) -%}
{#- the Sunday before as_of ends the newest complete week; the window starts active_weeks Mondays earlier -#}
{%- set last_sunday = as_of_date - modules.datetime.timedelta(days=as_of_date.weekday() + 1) -%}
{%- set weeks_start = last_sunday - modules.datetime.timedelta(days=7 * active_weeks - 1) -%}
{%- set as_of_sql = "cast('" ~ as_of ~ "' as date)" -%}
{%- set year_ago_sql = "cast('" ~ (as_of_date - modules.datetime.timedelta(days=365)).isoformat() ~ "' as date)" -%}
{%- set numeric = dbt.type_numeric() -%}

with customers as (
    select * from {{ ref('customers') }}
),

orders as (
    select * from {{ ref('customer_orders') }}
    where customer_id is not null
      and paid_date < {{ as_of_sql }}
),

activity as (
    select * from {{ ref('customer_activity') }}
    where occurred_date < {{ as_of_sql }}
),

order_traits as (
    select
        customer_id,
        count(*) as lifetime_orders,
        sum(total) as lifetime_value,
        sum(margin) as margin,
        sum(case when has_discount then 1 else 0 end) as orders_with_discount,
        sum(case when paid_date >= {{ year_ago_sql }} then 1 else 0 end) as orders_last_365d,
        coalesce(sum(case when paid_date >= {{ year_ago_sql }} then total end), 0) as order_total_last_365d
    from orders
    group by customer_id
),

-- week 0 starts on the Monday {{ active_weeks }} weeks before the Sunday before as_of
page_weeks as (
    select
        customer_id,
        count(distinct floor({{ dbt.datediff("cast('" ~ weeks_start.isoformat() ~ "' as date)", 'occurred_date', 'day') }} / 7)) as active_weeks
    from activity
    where message_type = 'page'
      and occurred_date >= cast('{{ weeks_start.isoformat() }}' as date)
      and occurred_date <= cast('{{ last_sunday.isoformat() }}' as date)
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
        case when date_of_birth is not null then
            {{ as_of_date.year }} - extract(year from date_of_birth)
            - case when extract(month from date_of_birth) * 100 + extract(day from date_of_birth)
                        > {{ as_of_date.month * 100 + as_of_date.day }} then 1 else 0 end
        end as age
    from customers
),

criteria as (
    select
        customers.customer_id,
        coalesce(order_traits.orders_last_365d, 0) as orders_last_365d,
        coalesce(order_traits.order_total_last_365d, 0) as order_total_last_365d,
        ages.age,
        coalesce(page_weeks.active_weeks, 0) as active_weeks,
        coalesce(order_traits.orders_last_365d, 0) >= {{ min_orders }}
            and coalesce(order_traits.order_total_last_365d, 0) > {{ min_total }} as meets_orders_criterion,
        coalesce(ages.age between {{ min_age }} and {{ max_age }}, false) as meets_age_criterion,
        coalesce(page_weeks.active_weeks, 0) >= {{ active_weeks }} as meets_activity_criterion
    from customers
    left join order_traits on order_traits.customer_id = customers.customer_id
    left join ages on ages.customer_id = customers.customer_id
    left join page_weeks on page_weeks.customer_id = customers.customer_id
),

final as (
    select
        customers.customer_id,
        cast('{{ as_of }}' as date) as as_of_date,
        criteria.meets_orders_criterion and criteria.meets_age_criterion and criteria.meets_activity_criterion as is_high_value,
        criteria.meets_orders_criterion,
        criteria.meets_age_criterion,
        criteria.meets_activity_criterion,
        criteria.orders_last_365d,
        criteria.order_total_last_365d,
        criteria.age,
        criteria.active_weeks,
        customers.lead_qualified,
        customers.customer_type,
        coalesce(order_traits.lifetime_orders, 0) as lifetime_orders,
        coalesce(order_traits.lifetime_value, 0) as lifetime_value,
        order_traits.margin,
        case when order_traits.lifetime_orders > 0
             then cast(order_traits.orders_with_discount as {{ numeric }}) / order_traits.lifetime_orders end as coupon_usage_rate,
        last_seen.last_seen_date,
        {{ dbt.datediff('last_seen.last_seen_date', as_of_sql, 'day') }} as days_since_last_seen
    from customers
    inner join criteria on criteria.customer_id = customers.customer_id
    left join order_traits on order_traits.customer_id = customers.customer_id
    left join last_seen on last_seen.customer_id = customers.customer_id
)

select * from final
