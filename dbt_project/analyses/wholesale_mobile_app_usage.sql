{#- Whitepaper question: how do wholesale customers use the mobile app? For each customer type: how many
    customers use the app at all, their app sessions, screens and events per app user, and the app's
    share of their web+app sessions; then the screens and events wholesale customers use most (rows with
    section = 'top_screen' / 'top_event'). -#}

with customers as (
    select customer_id, coalesce(customer_type, 'unknown') as customer_type from {{ ref('customers') }}
),

sessions as (
    select customer_id, channel from {{ ref('sessions') }} where customer_id is not null
),

app_touchpoints as (
    select customer_id, touchpoint_type, event_name
    from {{ ref('customer_journey') }}
    where channel = 'app'
),

usage as (
    select
        customers.customer_type,
        count(distinct customers.customer_id) as customers,
        count(distinct case when sessions.channel = 'app' then customers.customer_id end) as app_users,
        sum(case when sessions.channel = 'app' then 1 else 0 end) as app_sessions,
        sum(case when sessions.channel = 'web' then 1 else 0 end) as web_sessions
    from customers
    left join sessions on sessions.customer_id = customers.customer_id
    group by customers.customer_type
),

app_activity as (
    select
        customers.customer_type,
        sum(case when app_touchpoints.touchpoint_type = 'screen_view' then 1 else 0 end) as screen_views,
        sum(case when app_touchpoints.touchpoint_type = 'track' then 1 else 0 end) as app_events
    from app_touchpoints
    inner join customers on customers.customer_id = app_touchpoints.customer_id
    group by customers.customer_type
),

top_items as (
    select
        case when app_touchpoints.touchpoint_type = 'screen_view' then 'top_screen' else 'top_event' end as section,
        app_touchpoints.event_name as item,
        count(*) as uses,
        count(distinct app_touchpoints.customer_id) as customers
    from app_touchpoints
    inner join customers on customers.customer_id = app_touchpoints.customer_id
    where customers.customer_type = 'wholesale'
    group by 1, 2
)

select
    'by_customer_type' as section,
    usage.customer_type as item,
    usage.customers,
    usage.app_users,
    cast(usage.app_users as {{ dbt.type_float() }}) / nullif(usage.customers, 0) as app_adoption_rate,
    usage.app_sessions,
    cast(usage.app_sessions as {{ dbt.type_float() }}) / nullif(usage.app_sessions + usage.web_sessions, 0) as app_session_share,
    cast(app_activity.screen_views as {{ dbt.type_float() }}) / nullif(usage.app_users, 0) as screen_views_per_app_user,
    cast(app_activity.app_events as {{ dbt.type_float() }}) / nullif(usage.app_users, 0) as app_events_per_app_user
from usage
left join app_activity on app_activity.customer_type = usage.customer_type
union all
select section, item, customers, null, null, uses, null, null, null
from top_items
order by section, app_sessions desc, item
