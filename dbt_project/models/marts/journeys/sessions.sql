{#- Web and app sessions (30 minutes of inactivity end one) with their customer: journey_event_sessions,
    whose customer is looked up in customer_identifiers when read (the user id the device signed in with,
    else its anonymous id), so identity merges apply without rebuilding. Sessions of devices never tied
    to a customer are kept with a null customer_id. Grain: one row per session_id. -#}
{{ config(materialized='view') }}

with sessions as (
    select * from {{ ref('journey_event_sessions') }}
),

identifiers as (
    select identifier_type, identifier_value, customer_id from {{ ref('customer_identifiers') }}
    where identifier_type in ('user_id', 'anonymous_id')
),

final as (
    select
        sessions.session_id,
        coalesce(by_user.customer_id, by_device.customer_id) as customer_id,
        sessions.session_key,
        sessions.anonymous_id,
        sessions.user_id,
        sessions.source,
        sessions.channel,
        sessions.device_type,
        sessions.os_name,
        sessions.started_at,
        sessions.ended_at,
        sessions.duration_seconds,
        sessions.touchpoints,
        sessions.page_views,
        sessions.screen_views,
        sessions.tracks,
        sessions.landing_page_path,
        sessions.landing_page_referrer,
        sessions.utm_source,
        sessions.utm_medium,
        sessions.utm_campaign,
        sessions.first_received_date,
        sessions.last_received_date
    from sessions
    left join identifiers as by_user
        on by_user.identifier_type = 'user_id'
        and by_user.identifier_value = {{ normalize_identifier('user_id', 'sessions.user_id') }}
    left join identifiers as by_device
        on by_device.identifier_type = 'anonymous_id'
        and by_device.identifier_value = {{ normalize_identifier('anonymous_id', 'sessions.anonymous_id') }}
)

select * from final
