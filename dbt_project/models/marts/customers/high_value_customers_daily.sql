{#- High-value customers over time: for each day, how many customers meet is_high_value as of the end of
    that day (23:59:59.999999 UTC), or as of as_of itself for as_of's own day, with the same rule and vars as
    customer_traits (macros/high_value.sql). Days run from the first day the business has data for (a paid
    invoice or an app message) to as_of's UTC date, at most the last 365 days.
    Instead of evaluating the rule for every customer on every day, each criterion becomes the periods in
    which it holds for a customer, and only days inside an orders period are checked for age and activity:
      orders:   with a customer's qualifying invoices in paid order p1 <= p2 <= ..., the year before t holds
                at least N of them exactly when, for some i, p(i+N-1) <= t < p(i) + 365 days;
      activity: a run of consecutive active weeks from Monday a to Monday b covers every day whose week
                starts in [a + N weeks, b + 1 week];
      age:      completed years on the day, tested on the days left.
    Grain: one row per day. -#}
{%- set rule = high_value_rule() -%}
{%- set as_of = as_of_at() -%}
{%- set as_of_date = as_of.date() -%}
{%- set first_day = as_of_date - modules.datetime.timedelta(days=364) -%}
{%- set as_of_sql = timestamp_literal(as_of) -%}
{#- the end of first_day, 23:59:59.999999 UTC; day k ends k days later -#}
{%- set first_day_end_sql = timestamp_literal(modules.pytz.utc.localize(modules.datetime.datetime.combine(first_day, modules.datetime.time(23, 59, 59, 999999)))) -%}

with customers as (
    select customer_id, date_of_birth from {{ ref('customers') }}
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

data_start as (
    select min(first_day) as first_day
    from (
        select min({{ utc_date('paid_at') }}) as first_day from orders
        union all
        select min(occurred_date) as first_day from activity
    ) as firsts
),

spine as (
    {{ dbt.date_spine('day', date_literal(first_day), date_literal(as_of_date + modules.datetime.timedelta(days=1))) }}
),

days as (
    select
        cast(spine.date_day as date) as day,
        case when cast(spine.date_day as date) = {{ date_literal(as_of_date) }} then {{ as_of_sql }}
             else {{ dbt.dateadd('hour', '24 * ' ~ dbt.datediff(date_literal(first_day), 'cast(spine.date_day as date)', 'day'), first_day_end_sql) }}
        end as evaluated_at
    from spine
    cross join data_start
    where cast(spine.date_day as date) >= data_start.first_day
),

qualifying_orders as (
    select customer_id, paid_at
    from orders
    where {{ high_value_is_over_min_total('total_minor', 'currency', 'currency_decimals') }}
),

-- from the Nth qualifying invoice of a run until the first of them leaves the window
order_periods as (
    select customer_id, holds_from, holds_until
    from (
        select
            customer_id,
            lead(paid_at, {{ rule.min_orders - 1 }}) over (partition by customer_id order by paid_at) as holds_from,
            {{ dbt.dateadd('hour', 24 * rule.order_window_days, 'paid_at') }} as holds_until
        from qualifying_orders
    ) as runs
    where holds_from is not null
),

page_weeks as (
    select distinct customer_id, {{ high_value_week_start('occurred_date') }} as week_start
    from activity
    where message_type = 'page'
),

-- runs of consecutive active weeks (gaps and islands: week number minus its rank is constant in a run)
week_runs as (
    select customer_id, min(week_start) as first_week, max(week_start) as last_week
    from (
        select
            customer_id,
            week_start,
            {{ dbt.datediff(date_literal(modules.datetime.date(2001, 1, 1)), 'week_start', 'day') }} / 7
            - row_number() over (partition by customer_id order by week_start) as run_id
        from page_weeks
    ) as numbered
    group by customer_id, run_id
),

activity_periods as (
    select
        customer_id,
        cast({{ dbt.dateadd('day', 7 * rule.active_weeks, 'first_week') }} as date) as holds_from,
        cast({{ dbt.dateadd('day', 13, 'last_week') }} as date) as holds_through
    from week_runs
),

-- each (customer, day) on which the orders criterion holds at the day's moment
orders_met as (
    select distinct order_periods.customer_id, days.day
    from order_periods
    inner join days
        on days.evaluated_at >= order_periods.holds_from
       and days.evaluated_at < order_periods.holds_until
),

high_value as (
    select orders_met.day, orders_met.customer_id
    from orders_met
    inner join customers on customers.customer_id = orders_met.customer_id
    where {{ high_value_meets_age(completed_years('customers.date_of_birth', 'orders_met.day')) }}
      and exists (
          select 1 from activity_periods
          where activity_periods.customer_id = orders_met.customer_id
            and orders_met.day between activity_periods.holds_from and activity_periods.holds_through
      )
),

final as (
    select
        days.day,
        days.evaluated_at,
        count(high_value.customer_id) as high_value_customers
    from days
    left join high_value on high_value.day = days.day
    group by days.day, days.evaluated_at
)

select * from final
