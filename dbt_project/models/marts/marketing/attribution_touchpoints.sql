{#- Multi-touch attribution of every order to the UTM-tagged touchpoints (page views or tracks with a
    utm_source or utm_campaign) of its customer in the 30 days before it (var `attribution_window_days`;
    a touchpoint exactly 30 days before counts, one 30 days and a second does not). Each touchpoint gets
    a weight under four models, each summing to 1 per order:
      first_touch: 1 for the earliest touchpoint;  last_touch: 1 for the latest;
      linear: 1/n each;  position_based: 40% first, 40% last, 20% shared by the ones between
      (one touchpoint: 100%; two: 50% each).
    attributed_revenue_<model> = the order total x that weight, in the reporting currency (var
    reporting_currency; each order converted at the finance rate of its paid date, so orders in
    different currencies add up; null without a rate). Orders without UTM touchpoints are not here.
    Grain: one row per (order_id, touchpoint_id). -#}
{%- set window_days = var('attribution_window_days', 30) | int -%}
{%- set float = dbt.type_float() -%}

with orders as (
    select invoice_id as order_id, customer_id, paid_at as ordered_at, currency as order_currency, total as order_total,
           reporting_currency as currency,
           {{ minor_to_major('total_reporting_minor', iso_decimals_of(var('reporting_currency', 'USD'))) }} as revenue
    from {{ ref('customer_orders') }}
    where customer_id is not null and paid_at is not null
),

utm_touchpoints as (
    select customer_id, touchpoint_type, touchpoint_id, occurred_at, channel, session_id,
           utm_source, utm_medium, utm_campaign, page_path
    from {{ ref('customer_journey') }}
    where touchpoint_type in ('page_view', 'screen_view', 'track')
      and (utm_source is not null or utm_campaign is not null)
),

order_touchpoints as (
    select
        orders.order_id,
        orders.customer_id,
        orders.ordered_at,
        orders.revenue,
        orders.currency,
        orders.order_currency,
        orders.order_total,
        utm_touchpoints.touchpoint_id,
        utm_touchpoints.touchpoint_type,
        utm_touchpoints.occurred_at,
        utm_touchpoints.channel,
        utm_touchpoints.session_id,
        utm_touchpoints.utm_source,
        utm_touchpoints.utm_medium,
        utm_touchpoints.utm_campaign,
        utm_touchpoints.page_path
    from orders
    inner join utm_touchpoints
        on utm_touchpoints.customer_id = orders.customer_id
        and utm_touchpoints.occurred_at <= orders.ordered_at
        and utm_touchpoints.occurred_at >= {{ dbt.dateadd('day', -window_days, 'orders.ordered_at') }}
),

positioned as (
    select
        *,
        row_number() over (partition by order_id order by occurred_at, touchpoint_id) as touchpoint_position,
        count(*) over (partition by order_id) as touchpoints_in_window
    from order_touchpoints
),

weighted as (
    select
        *,
        case when touchpoint_position = 1 then 1.0 else 0.0 end as weight_first_touch,
        case when touchpoint_position = touchpoints_in_window then 1.0 else 0.0 end as weight_last_touch,
        1.0 / touchpoints_in_window as weight_linear,
        case
            when touchpoints_in_window = 1 then 1.0
            when touchpoints_in_window = 2 then 0.5
            when touchpoint_position = 1 or touchpoint_position = touchpoints_in_window then 0.4
            else 0.2 / (touchpoints_in_window - 2)
        end as weight_position_based
    from positioned
),

final as (
    select
        order_id,
        touchpoint_id,
        customer_id,
        ordered_at,
        currency,
        revenue as order_revenue,
        order_currency,
        order_total,
        touchpoint_type,
        occurred_at as touched_at,
        channel,
        session_id,
        utm_source,
        utm_medium,
        utm_campaign,
        page_path,
        touchpoint_position,
        touchpoints_in_window,
        cast(weight_first_touch as {{ float }}) as weight_first_touch,
        cast(weight_last_touch as {{ float }}) as weight_last_touch,
        cast(weight_linear as {{ float }}) as weight_linear,
        cast(weight_position_based as {{ float }}) as weight_position_based,
        cast(revenue * weight_first_touch as {{ float }}) as attributed_revenue_first_touch,
        cast(revenue * weight_last_touch as {{ float }}) as attributed_revenue_last_touch,
        cast(revenue * weight_linear as {{ float }}) as attributed_revenue_linear,
        cast(revenue * weight_position_based as {{ float }}) as attributed_revenue_position_based
    from weighted
)

select * from final
