{#- Every touchpoint of a known customer from every source, in one timeline: page and screen views,
    app tracks, email delivered/opened/clicked (Customer.io), orders (paid Stripe invoices), sales calls
    and deal stage changes (HubSpot, once per associated contact) and support tickets (Zendesk). A view: the customer
    of each touchpoint is looked up in customer_identifiers when read, so identity merges apply to
    history without rebuilding the incremental event touchpoints.
    A touchpoint belongs to the customer of its own identifier (user id, Customer.io id, Stripe customer,
    HubSpot contact, Zendesk user), else of its device's anonymous id.
    Grain: one row per (touchpoint_type, touchpoint_id, customer_id). -#}
{{ config(materialized='view') }}
{%- set text = dbt.type_string() -%}

with event_touchpoints as (
    select * from {{ ref('journey_event_touchpoints') }}
),

invoices as (
    select * from {{ ref('stg_stripe__invoices') }}
    where invoice_status = 'paid' and not coalesce(is_deleted, false)
),

deal_stage_changes as (
    select * from {{ ref('stg_hubspot__deal_stage_changes') }}
),

deals as (
    select * from {{ ref('stg_hubspot__deals') }}
),

deal_contacts as (
    select distinct deal_id, contact_id from {{ ref('stg_hubspot__deal_contact_associations') }}
),

calls as (
    select * from {{ ref('stg_hubspot__calls') }}
    where not coalesce(is_archived, false)
),

call_contacts as (
    select distinct call_id, contact_id from {{ ref('stg_hubspot__call_contact_associations') }}
),

tickets as (
    select * from {{ ref('stg_zendesk__tickets') }}
    where coalesce(ticket_status, '') <> 'deleted'
),

identifiers as (
    select identifier_type, identifier_value, customer_id from {{ ref('customer_identifiers') }}
),

touchpoints as (
    select
        touchpoint_type,
        touchpoint_id,
        event_name,
        occurred_at,
        source,
        channel,
        session_id,
        user_identifier_type as identifier_type,
        user_id as identifier_value,
        anonymous_id,
        page_path,
        utm_source,
        utm_medium,
        utm_campaign,
        device_type,
        email_campaign_id,
        cast(null as {{ dbt.type_numeric() }}) as amount,
        received_date
    from event_touchpoints
    union all
    select
        'order', invoice_id, 'Order Completed', coalesce(paid_at, created_at), 'stripe', 'payments', cast(null as {{ text }}),
        'stripe_customer_id', stripe_customer_id, cast(null as {{ text }}), cast(null as {{ text }}),
        cast(null as {{ text }}), cast(null as {{ text }}), cast(null as {{ text }}), cast(null as {{ text }}), cast(null as {{ text }}),
        cast(total as {{ dbt.type_numeric() }}) / 100, cast(null as date)
    from invoices
    union all
    select
        'deal_stage_change', {{ dbt.concat(['deal_stage_changes.dlt_id', "':'", 'deal_contacts.contact_id']) }},
        {{ dbt.concat(["'Deal Stage: '", 'deal_stage_changes.deal_stage']) }}, deal_stage_changes.changed_at, 'hubspot', 'sales',
        cast(null as {{ text }}), 'hubspot_contact_id', deal_contacts.contact_id, cast(null as {{ text }}), cast(null as {{ text }}),
        cast(null as {{ text }}), cast(null as {{ text }}), cast(null as {{ text }}), cast(null as {{ text }}), deals.deal_id,
        deals.amount, cast(null as date)
    from deal_stage_changes
    inner join deals on deals.dlt_id = deal_stage_changes.deal_dlt_id
    inner join deal_contacts on deal_contacts.deal_id = deals.deal_id
    union all
    select
        'sales_call', {{ dbt.concat(['calls.call_id', "':'", 'call_contacts.contact_id']) }},
        coalesce(calls.title, 'Sales Call'), coalesce(calls.called_at, calls.created_at), 'hubspot', 'sales',
        cast(null as {{ text }}), 'hubspot_contact_id', call_contacts.contact_id, cast(null as {{ text }}), cast(null as {{ text }}),
        cast(null as {{ text }}), cast(null as {{ text }}), cast(null as {{ text }}), cast(null as {{ text }}), calls.call_id,
        cast(null as {{ dbt.type_numeric() }}), cast(null as date)
    from calls
    inner join call_contacts on call_contacts.call_id = calls.call_id
    union all
    select
        'support_ticket', cast(ticket_id as {{ text }}), subject, created_at, 'zendesk', 'support', cast(null as {{ text }}),
        'zendesk_user_id', cast(requester_id as {{ text }}), cast(null as {{ text }}), cast(null as {{ text }}),
        cast(null as {{ text }}), cast(null as {{ text }}), cast(null as {{ text }}), cast(null as {{ text }}), cast(null as {{ text }}),
        cast(null as {{ dbt.type_numeric() }}), cast(null as date)
    from tickets
),

final as (
    select
        coalesce(by_own_id.customer_id, by_device.customer_id) as customer_id,
        touchpoints.touchpoint_type,
        touchpoints.touchpoint_id,
        touchpoints.event_name,
        touchpoints.occurred_at,
        touchpoints.source,
        touchpoints.channel,
        touchpoints.session_id,
        touchpoints.identifier_type,
        touchpoints.identifier_value,
        touchpoints.anonymous_id,
        touchpoints.page_path,
        touchpoints.utm_source,
        touchpoints.utm_medium,
        touchpoints.utm_campaign,
        touchpoints.device_type,
        -- the Customer.io campaign of an email, the HubSpot deal of a stage change, the HubSpot call
        touchpoints.email_campaign_id as related_object_id,
        touchpoints.amount,
        touchpoints.received_date
    from touchpoints
    left join identifiers as by_own_id
        on by_own_id.identifier_type = touchpoints.identifier_type
        and by_own_id.identifier_value = case when touchpoints.identifier_type = 'email'
            then {{ normalize_identifier('email', 'touchpoints.identifier_value') }}
            else {{ normalize_identifier('user_id', 'touchpoints.identifier_value') }} end
    left join identifiers as by_device
        on by_device.identifier_type = 'anonymous_id'
        and by_device.identifier_value = {{ normalize_identifier('anonymous_id', 'touchpoints.anonymous_id') }}
    where coalesce(by_own_id.customer_id, by_device.customer_id) is not null
)

select * from final
