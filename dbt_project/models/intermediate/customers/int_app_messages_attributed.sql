{#- Every app message (page, screen, track, identify) of a known customer, with the device and the
    campaign it came from. Tracks the loader derives from SaaS webhooks (emails, payments) are not the
    person's own activity and are left out. A message belongs to the customer of its user_id, else of
    its anonymous_id. occurred_date is the UTC date of the (clock-corrected) event timestamp.
    Grain: one row per message_type and message_id. -#}
{%- set webhook_library = identity_webhook_library() -%}

with pages as (
    select * from {{ ref('stg_events__pages') }}
),

screens as (
    select * from {{ ref('stg_events__screens') }}
),

tracks as (
    select * from {{ ref('stg_events__tracks') }}
),

identifies as (
    select * from {{ ref('stg_events__identifies') }}
),

identifiers as (
    select * from {{ ref('customer_identifiers') }}
    where identifier_type in ('user_id', 'anonymous_id')
),

messages as (
{%- for relation, message_type, occurred_at, event_name in [
    ('pages', 'page', 'viewed_at', 'page_name'),
    ('screens', 'screen', 'viewed_at', 'screen_name'),
    ('tracks', 'track', 'occurred_at', 'event_name'),
    ('identifies', 'identify', 'identified_at', 'cast(null as ' ~ dbt.type_string() ~ ')'),
] %}
    select
        '{{ message_type }}' as message_type,
        message_id,
        {{ event_name }} as event_name,
        coalesce({{ occurred_at }}, received_at) as occurred_at,
        source,
        anonymous_id,
        user_id,
        device_id,
        device_type,
        device_model,
        os_name,
        user_agent,
        utm_source,
        utm_medium,
        utm_campaign,
        page_path
    from {{ relation }}
    where coalesce(library_name, '') <> '{{ webhook_library }}'
    {{ "union all" if not loop.last }}
{%- endfor %}
),

final as (
    select
        coalesce(by_user.customer_id, by_device.customer_id) as customer_id,
        messages.message_type,
        messages.message_id,
        messages.event_name,
        messages.occurred_at,
        {{ utc_date('messages.occurred_at') }} as occurred_date,
        messages.source,
        messages.anonymous_id,
        messages.user_id,
        messages.device_id,
        messages.device_type,
        messages.device_model,
        messages.os_name,
        messages.user_agent,
        messages.utm_source,
        messages.utm_medium,
        messages.utm_campaign,
        messages.page_path
    from messages
    left join identifiers as by_user
        on by_user.identifier_type = 'user_id'
        and by_user.identifier_value = {{ normalize_identifier('user_id', 'messages.user_id') }}
    left join identifiers as by_device
        on by_device.identifier_type = 'anonymous_id'
        and by_device.identifier_value = {{ normalize_identifier('anonymous_id', 'messages.anonymous_id') }}
    where coalesce(by_user.customer_id, by_device.customer_id) is not null
)

select * from final
