{#- The customer 360: one row per customer_id with every trait from every tool. Profile traits are
    the survivors of `customer_profile_values` (source priority, then recency); activity, orders, email
    engagement and support are aggregated over all of the customer's identifiers. Money (revenue,
    discounts, cost, margin, lifetime value) is in the reporting currency (var reporting_currency),
    each order converted at the finance rate of its paid date and summed in integer minor units; null
    when an order has no rate. age is on the UTC date of as_of (macro as_of_at).
    DuckDB SQL (arg_min over a (occurred_at, message_id) row). Grain: one row per customer_id. -#}
{%- set as_of = as_of_at().date().isoformat() -%}
{%- set reporting = var('reporting_currency', 'USD') | upper -%}
{%- set reporting_decimals = iso_decimals_of(reporting) -%}
{%- set text = dbt.type_string() -%}

with identifiers as (
    select * from {{ ref('customer_identifiers') }}
),

profile_values as (
    select * from {{ ref('customer_profile_values') }}
    where survivorship_rank = 1
),

orders as (
    select * from {{ ref('customer_orders') }}
),

activity as (
    select * from {{ ref('customer_activity') }}
),

email_delivered as (
    select * from {{ ref('stg_events__email_delivered') }}
),

email_opened as (
    select * from {{ ref('stg_events__email_opened') }}
),

email_clicked as (
    select * from {{ ref('stg_events__email_clicked') }}
),

tickets as (
    select * from {{ ref('stg_zendesk__tickets') }}
),

deals as (
    select * from {{ ref('stg_hubspot__deals') }}
    where not coalesce(is_archived, false)
),

deal_contacts as (
    select * from {{ ref('stg_hubspot__deal_contact_associations') }}
),

customer_ids as (
    select customer_id, min(first_seen_at) as first_seen_at, max(last_seen_at) as last_seen_at
    from identifiers
    group by customer_id
),

-- the most recently seen identifier of each type, and how many the customer has
identifier_ranked as (
    select
        customer_id,
        identifier_type,
        identifier_value,
        row_number() over (partition by customer_id, identifier_type
                           order by last_seen_at desc nulls last, identifier_value) as recency_rank,
        count(*) over (partition by customer_id, identifier_type) as type_count
    from identifiers
),

identifier_summary as (
    select
        customer_id,
        {%- for identifier_type in ['user_id', 'hubspot_contact_id', 'stripe_customer_id', 'zendesk_user_id', 'customerio_id'] %}
        max(case when identifier_type = '{{ identifier_type }}' and recency_rank = 1 then identifier_value end) as {{ identifier_type }},
        {%- endfor %}
        max(case when identifier_type = 'email' then type_count else 0 end) as email_count,
        max(case when identifier_type = 'anonymous_id' then type_count else 0 end) as anonymous_id_count
    from identifier_ranked
    group by customer_id
),

emails_listed as (
    select customer_id, {{ dbt.listagg('identifier_value', "', '", 'order by identifier_value') }} as emails
    from identifiers
    where identifier_type = 'email'
    group by customer_id
),

profile as (
    select
        customer_id,
        {%- for trait in ['email', 'first_name', 'last_name', 'full_name', 'phone', 'date_of_birth', 'customer_type',
                          'lead_qualified', 'lifecycle_stage', 'company_name', 'job_title', 'city', 'country',
                          'account_manager_id', 'account_manager_name', 'account_manager_email'] %}
        max(case when trait_name = '{{ trait }}' then trait_value end) as {{ trait }}{{ "," if not loop.last }}
        {%- endfor %}
    from profile_values
    group by customer_id
),

order_summary as (
    select
        customer_id,
        count(*) as orders,
        sum(total_reporting_minor) as revenue_minor,
        sum(discount_reporting_minor) as discounts_minor,
        sum(cost_reporting_minor) as cost_minor,
        sum(margin_reporting_minor) as margin_minor,
        sum(case when total_reporting_minor is null then 1 else 0 end) as orders_without_rate,
        sum(case when margin_minor is null then 1 else 0 end) as orders_without_cost,
        sum(case when has_discount then 1 else 0 end) as orders_with_discount,
        min(paid_at) as first_order_at,
        max(paid_at) as last_order_at
    from orders
    where customer_id is not null
    group by customer_id
),

activity_summary as (
    select
        customer_id,
        min(occurred_at) as first_activity_at,
        max(occurred_at) as last_activity_at,
        sum(case when message_type = 'page' then 1 else 0 end) as page_views,
        sum(case when message_type = 'screen' then 1 else 0 end) as screen_views,
        count(distinct case when message_type in ('page', 'screen') then occurred_date end) as active_days
    from activity
    group by customer_id
),

platforms as (
    select customer_id, {{ dbt.listagg('source', "', '", 'order by source') }} as platforms
    from (select distinct customer_id, source from activity where source is not null) as distinct_sources
    group by customer_id
),

operating_systems as (
    select customer_id, {{ dbt.listagg('os_name', "', '", 'order by os_name') }} as operating_systems
    from (select distinct customer_id, os_name from activity where os_name is not null) as distinct_os
    group by customer_id
),

-- a visit's channel: its UTM source / medium, or 'direct' without campaign tags
page_channels as (
    select
        customer_id,
        occurred_at,
        message_id,
        case when utm_source is null then 'direct'
             else {{ dbt.concat(["utm_source", "' / '", "coalesce(utm_medium, '(none)')"]) }} end as channel,
        utm_campaign
    from activity
    where message_type = 'page'
),

-- the first and last campaign visit, by (occurred_at, message_id): one aggregation, no sort. Channel
-- and campaign come from the same visit as one struct (arg_min skips null values: a visit without
-- utm_campaign must still give its null campaign, not a later visit's)
touches as (
    select
        customer_id,
        arg_min({'channel': channel, 'campaign': utm_campaign}, (occurred_at, message_id)) as first_touch,
        arg_max({'channel': channel, 'campaign': utm_campaign}, (occurred_at, message_id)) as last_touch
    from page_channels
    where channel <> 'direct'
    group by customer_id
),

channel_summary as (
    select
        customer_id,
        first_touch.channel as first_touch_channel,
        first_touch.campaign as first_touch_campaign,
        last_touch.channel as last_touch_channel,
        last_touch.campaign as last_touch_campaign
    from touches
),

channels_listed as (
    select customer_id, {{ dbt.listagg('channel', "', '", 'order by channel') }} as channels
    from (select distinct customer_id, channel from page_channels) as distinct_channels
    group by customer_id
),

-- Customer.io reporting webhooks: the user id is the Customer.io identifier, else match the email
email_events as (
    select 'delivered' as email_event, user_id, email, delivery_id, occurred_at from email_delivered
    union all
    select 'opened', user_id, email, delivery_id, occurred_at from email_opened
    union all
    select 'clicked', user_id, email, delivery_id, occurred_at from email_clicked
),

email_events_attributed as (
    select
        coalesce(by_cio.customer_id, by_email.customer_id) as customer_id,
        email_events.*
    from email_events
    left join identifiers as by_cio
        on by_cio.identifier_type = 'customerio_id'
        and by_cio.identifier_value = {{ normalize_identifier('customerio_id', 'email_events.user_id') }}
    left join identifiers as by_email
        on by_email.identifier_type = 'email'
        and by_email.identifier_value = {{ normalize_identifier('email', 'email_events.email') }}
),

email_summary as (
    select
        customer_id,
        count(distinct case when email_event = 'delivered' then coalesce(delivery_id, cast(occurred_at as {{ text }})) end) as emails_delivered,
        count(distinct case when email_event = 'opened' then coalesce(delivery_id, cast(occurred_at as {{ text }})) end) as emails_opened,
        count(distinct case when email_event = 'clicked' then coalesce(delivery_id, cast(occurred_at as {{ text }})) end) as emails_clicked,
        max(case when email_event = 'opened' then occurred_at end) as last_email_opened_at,
        max(case when email_event = 'clicked' then occurred_at end) as last_email_clicked_at
    from email_events_attributed
    where customer_id is not null
    group by customer_id
),

ticket_summary as (
    select
        identifiers.customer_id,
        count(*) as support_tickets,
        sum(case when tickets.ticket_status in ('new', 'open', 'pending', 'hold') then 1 else 0 end) as open_support_tickets,
        max(tickets.created_at) as last_support_ticket_at
    from tickets
    inner join identifiers
        on identifiers.identifier_type = 'zendesk_user_id'
        and identifiers.identifier_value = {{ normalize_identifier('zendesk_user_id', 'tickets.requester_id') }}
    group by identifiers.customer_id
),

-- HubSpot deals of any of the customer's contacts (a deal with two contacts of one customer counts once)
deal_summary as (
    select
        customer_id,
        count(*) as deals,
        sum(case when deal_stage not in ('closedwon', 'closedlost') then 1 else 0 end) as open_deals,
        sum(case when deal_stage = 'closedwon' then amount else 0 end) as won_deal_amount
    from (
        select distinct identifiers.customer_id, deals.deal_id, deals.deal_stage, deals.amount
        from deals
        inner join deal_contacts on deal_contacts.deal_id = deals.deal_id
        inner join identifiers
            on identifiers.identifier_type = 'hubspot_contact_id'
            and identifiers.identifier_value = {{ normalize_identifier('hubspot_contact_id', 'deal_contacts.contact_id') }}
    ) as customer_deals
    group by customer_id
),

typed_profile as (
    select
        profile.*,
        {{ dbt.safe_cast('date_of_birth', 'date') }} as birth_date
    from profile
),

final as (
    select
        customer_ids.customer_id,
        -- profile (survivorship: source priority, then recency)
        typed_profile.email,
        emails_listed.emails,
        coalesce(identifier_summary.email_count, 0) as email_count,
        typed_profile.first_name,
        typed_profile.last_name,
        typed_profile.full_name,
        typed_profile.phone,
        typed_profile.birth_date as date_of_birth,
        case when typed_profile.birth_date is not null then
            {{ as_of[0:4] | int }} - extract(year from typed_profile.birth_date)
            - case when extract(month from typed_profile.birth_date) * 100 + extract(day from typed_profile.birth_date)
                        > {{ as_of[5:7] | int * 100 + as_of[8:10] | int }} then 1 else 0 end
        end as age,
        typed_profile.customer_type,
        case typed_profile.lead_qualified when 'true' then true when 'false' then false end as lead_qualified,
        typed_profile.lifecycle_stage,
        typed_profile.company_name,
        typed_profile.job_title,
        typed_profile.city,
        typed_profile.country,
        typed_profile.account_manager_id,
        typed_profile.account_manager_name,
        typed_profile.account_manager_email,
        -- identifiers in each tool (the most recently seen one of each type)
        identifier_summary.user_id,
        identifier_summary.hubspot_contact_id,
        identifier_summary.stripe_customer_id,
        identifier_summary.zendesk_user_id,
        identifier_summary.customerio_id,
        -- first and last seen in any system; first and last app activity
        customer_ids.first_seen_at,
        customer_ids.last_seen_at,
        activity_summary.first_activity_at,
        activity_summary.last_activity_at,
        coalesce(activity_summary.page_views, 0) as page_views,
        coalesce(activity_summary.screen_views, 0) as screen_views,
        coalesce(activity_summary.active_days, 0) as active_days,
        -- orders (paid Stripe invoices)
        coalesce(order_summary.orders, 0) as orders,
        '{{ reporting }}' as reporting_currency,
        case when coalesce(order_summary.orders_without_rate, 0) = 0
             then {{ minor_to_major('coalesce(order_summary.revenue_minor, 0)', reporting_decimals) }} end as revenue,
        case when coalesce(order_summary.orders_without_rate, 0) = 0
             then {{ minor_to_major('coalesce(order_summary.discounts_minor, 0)', reporting_decimals) }} end as discounts,
        case when coalesce(order_summary.orders_without_rate, 0) = 0
             then {{ minor_to_major('order_summary.cost_minor', reporting_decimals) }} end as cost,
        case when coalesce(order_summary.orders_without_rate, 0) = 0
             then {{ minor_to_major('order_summary.margin_minor', reporting_decimals) }} end as margin,
        coalesce(order_summary.orders_without_rate, 0) as orders_without_exchange_rate,
        coalesce(order_summary.orders_without_cost, 0) as orders_without_cost,
        coalesce(order_summary.orders_with_discount, 0) as orders_with_discount,
        case when coalesce(order_summary.orders_without_rate, 0) = 0
             then {{ minor_to_major('coalesce(order_summary.revenue_minor, 0)', reporting_decimals) }} end as lifetime_value,
        case when order_summary.orders > 0 and order_summary.orders_without_rate = 0
             then {{ minor_to_major('order_summary.revenue_minor', reporting_decimals) }} / order_summary.orders end as average_order_value,
        order_summary.first_order_at,
        order_summary.last_order_at,
        -- email engagement (Customer.io)
        coalesce(email_summary.emails_delivered, 0) as emails_delivered,
        coalesce(email_summary.emails_opened, 0) as emails_opened,
        coalesce(email_summary.emails_clicked, 0) as emails_clicked,
        case when email_summary.emails_delivered > 0
             then cast(email_summary.emails_opened as {{ dbt.type_numeric() }}) / email_summary.emails_delivered end as email_open_rate,
        email_summary.last_email_opened_at,
        email_summary.last_email_clicked_at,
        -- sales (HubSpot deals)
        coalesce(deal_summary.deals, 0) as deals,
        coalesce(deal_summary.open_deals, 0) as open_deals,
        coalesce(deal_summary.won_deal_amount, 0) as won_deal_amount,
        -- support (Zendesk)
        coalesce(ticket_summary.support_tickets, 0) as support_tickets,
        coalesce(ticket_summary.open_support_tickets, 0) as open_support_tickets,
        ticket_summary.last_support_ticket_at,
        -- devices and channels
        coalesce(identifier_summary.anonymous_id_count, 0) as devices,
        platforms.platforms,
        operating_systems.operating_systems,
        channels_listed.channels,
        channel_summary.first_touch_channel,
        channel_summary.first_touch_campaign,
        channel_summary.last_touch_channel,
        channel_summary.last_touch_campaign
    from customer_ids
    left join identifier_summary on identifier_summary.customer_id = customer_ids.customer_id
    left join emails_listed on emails_listed.customer_id = customer_ids.customer_id
    left join typed_profile on typed_profile.customer_id = customer_ids.customer_id
    left join order_summary on order_summary.customer_id = customer_ids.customer_id
    left join activity_summary on activity_summary.customer_id = customer_ids.customer_id
    left join platforms on platforms.customer_id = customer_ids.customer_id
    left join operating_systems on operating_systems.customer_id = customer_ids.customer_id
    left join channel_summary on channel_summary.customer_id = customer_ids.customer_id
    left join channels_listed on channels_listed.customer_id = customer_ids.customer_id
    left join email_summary on email_summary.customer_id = customer_ids.customer_id
    left join ticket_summary on ticket_summary.customer_id = customer_ids.customer_id
    left join deal_summary on deal_summary.customer_id = customer_ids.customer_id
)

select * from final
