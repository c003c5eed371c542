{#- Every web/app/email touchpoint captured as an event, with its session (30-minute inactivity rule).
    Incremental by received date, like the event loads: a run replaces the received dates
    [min_date, max_date] (YYYY-MM-DD, both inclusive; macro events_date_range: dbt vars, or the environment
    variables a Dagster partition run sets); without them an incremental run redoes the newest received
    date already built and anything newer.
    Sessions continue across runs: the touchpoints already built within the inactivity gap of a new one
    lend it their session_id, so a session crossing midnight keeps one id. (DuckDB SQL: window IGNORE NULLS, QUALIFY.)
    Grain: one row per touchpoint_id (the message id). -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='received_date',
    on_schema_change='append_new_columns',
    tags=['events_daily'],
) }}
{%- set webhook_library = identity_webhook_library() -%}
{%- set gap_minutes = var('session_inactivity_minutes', 30) | int -%}
{%- set dates = events_date_range() -%}
{%- if dates is not none -%}
    {%- set range_start = "cast('" ~ dates.min ~ " 00:00:00+00:00' as " ~ type_timestamptz() ~ ")" -%}
    {%- set range_end = dbt.dateadd('day', 1, "cast('" ~ dates.max ~ " 00:00:00+00:00' as " ~ type_timestamptz() ~ ")") -%}
{%- elif is_incremental() -%}
    {#- midnight UTC of the newest received date built, whatever the session's time zone -#}
    {%- set range_start = "(select cast(" ~ dbt.concat(["cast(max(received_date) as " ~ dbt.type_string() ~ ")", "' 00:00:00+00:00'"])
                          ~ " as " ~ type_timestamptz() ~ ") from " ~ this ~ ")" -%}
    {%- set range_end = none -%}
{%- else -%}
    {%- set range_start = none -%}
    {%- set range_end = none -%}
{%- endif -%}
{%- set text = dbt.type_string() -%}
{#- filter on the raw received_at so the scan can skip row groups outside the range -#}
{%- set in_range = (" and received_at >= " ~ range_start if range_start is not none else "")
                 ~ (" and received_at < " ~ range_end if range_end is not none else "") -%}

with pages as (
    select * from {{ ref('stg_events__pages') }}
    where coalesce(library_name, '') <> '{{ webhook_library }}' {{ in_range }}
),

screens as (
    select * from {{ ref('stg_events__screens') }}
    where coalesce(library_name, '') <> '{{ webhook_library }}' {{ in_range }}
),

-- tracks derived from SaaS webhooks (emails, payments) come from their own tables and sources
tracks as (
    select * from {{ ref('stg_events__tracks') }}
    where coalesce(library_name, '') <> '{{ webhook_library }}' {{ in_range }}
),

email_delivered as (
    select * from {{ ref('stg_events__email_delivered') }}
    where true {{ in_range }}
),

email_opened as (
    select * from {{ ref('stg_events__email_opened') }}
    where true {{ in_range }}
),

email_clicked as (
    select * from {{ ref('stg_events__email_clicked') }}
    where true {{ in_range }}
),

touchpoints as (
    select
        message_id,
        'page_view' as touchpoint_type,
        page_name as event_name,
        coalesce(viewed_at, received_at) as occurred_at,
        received_at,
        source,
        'web' as channel,
        anonymous_id,
        user_id,
        'user_id' as user_identifier_type,
        coalesce(path, page_path) as page_path,
        coalesce(url, page_url) as page_url,
        coalesce(referrer, page_referrer) as page_referrer,
        utm_source, utm_medium, utm_campaign, utm_term, utm_content,
        device_type, os_name,
        cast(null as {{ text }}) as email_campaign_id,
        cast(null as {{ text }}) as link_url
    from pages
    union all
    select
        message_id, 'screen_view', screen_name, coalesce(viewed_at, received_at), received_at, source, 'app',
        anonymous_id, user_id, 'user_id', page_path, page_url, page_referrer,
        utm_source, utm_medium, utm_campaign, utm_term, utm_content, device_type, os_name,
        cast(null as {{ text }}), cast(null as {{ text }})
    from screens
    union all
    select
        -- event_text is the name as sent ("Order Completed"), event its table name (order_completed)
        message_id, 'track', coalesce(event_text, event_name), coalesce(occurred_at, received_at), received_at, source,
        -- a mobile SDK sends device/app/os context, a browser a user agent; a server neither
        case when device_type is not null or app_name is not null or os_name is not null then 'app'
             when user_agent is not null or page_path is not null or page_url is not null then 'web'
             else 'server' end,
        anonymous_id, user_id, 'user_id', page_path, page_url, page_referrer,
        utm_source, utm_medium, utm_campaign, utm_term, utm_content, device_type, os_name,
        cast(null as {{ text }}), cast(null as {{ text }})
    from tracks
{%- for relation, kind in [('email_delivered', 'email_delivered'), ('email_opened', 'email_opened'), ('email_clicked', 'email_clicked')] %}
    union all
    select
        -- Customer.io reports name the person by their Customer.io identifier
        message_id, '{{ kind }}', coalesce(event_text, event_name, '{{ kind }}'), coalesce(occurred_at, received_at), received_at, source, 'email',
        anonymous_id, user_id, 'customerio_id', cast(null as {{ text }}), cast(null as {{ text }}), cast(null as {{ text }}),
        utm_source, utm_medium, utm_campaign, utm_term, utm_content, cast(null as {{ text }}), cast(null as {{ text }}),
        campaign_id, {{ 'link_url' if kind == 'email_clicked' else 'cast(null as ' ~ text ~ ')' }}
    from {{ relation }}
{%- endfor %}
),

keyed as (
    select
        *,
        {{ utc_date('received_at') }} as received_date,
        -- a session is one device's activity: its anonymous id, else (server-side SDKs) its user id
        case when channel in ('web', 'app') then
            case when anonymous_id is not null then {{ dbt.concat(["'anonymous_id:'", 'anonymous_id']) }}
                 when user_id is not null then {{ dbt.concat(["'user_id:'", 'user_id']) }} end
        end as session_key
    from touchpoints
),
{%- if is_incremental() %}

-- the span within the inactivity gap of each device's new touchpoints
windows as (
    select
        session_key,
        {{ dbt.dateadd('minute', -gap_minutes, 'min(occurred_at)') }} as window_start,
        {{ dbt.dateadd('minute', gap_minutes, 'max(occurred_at)') }} as window_end
    from keyed
    where session_key is not null
    group by session_key
),

-- touchpoints built by earlier runs (other received dates) in those spans: their sessions may continue
previous as (
    select built.session_key, built.occurred_at, built.touchpoint_id, built.session_id
    from {{ this }} as built
    inner join windows
        on windows.session_key = built.session_key
        and built.occurred_at between windows.window_start and windows.window_end
    where built.session_id is not null
      and built.occurred_at >= (select min(window_start) from windows)
      and built.received_date not in (select distinct received_date from keyed)
),
{%- endif %}

-- only the columns sessionizing needs: the window sorts these, not whole touchpoints
sessionable as (
    select session_key, occurred_at, message_id, cast(null as {{ text }}) as known_session_id, 1 as is_new
    from keyed
    where session_key is not null
{%- if is_incremental() %}
    union all
    select session_key, occurred_at, touchpoint_id, session_id, 0
    from previous
{%- endif %}
),

-- one pass over each device's touchpoints in time order: a touchpoint more than the gap after the
-- previous one starts a session, named by its key and first message (or the id it was built with)
session_starts as (
    select
        *,
        case when lag(occurred_at) over device_timeline is null
               or occurred_at > {{ dbt.dateadd('minute', gap_minutes, 'lag(occurred_at) over device_timeline') }}
             then coalesce(known_session_id, md5({{ dbt.concat(['session_key', "'|'", 'message_id']) }}))
        end as started_session_id
    from sessionable
    window device_timeline as (partition by session_key order by occurred_at, message_id)
),

sessionized as (
    select
        message_id,
        last_value(started_session_id ignore nulls) over (
            partition by session_key order by occurred_at, message_id
            rows between unbounded preceding and current row) as session_id
    from session_starts
    qualify is_new = 1
),

all_touchpoints as (
    select keyed.*, sessionized.session_id
    from keyed
    left join sessionized on sessionized.message_id = keyed.message_id
),

final as (
    select
        message_id as touchpoint_id,
        touchpoint_type,
        event_name,
        occurred_at,
        received_at,
        received_date,
        source,
        channel,
        session_id,
        session_key,
        anonymous_id,
        user_id,
        user_identifier_type,
        page_path,
        page_url,
        page_referrer,
        utm_source,
        utm_medium,
        utm_campaign,
        utm_term,
        utm_content,
        device_type,
        os_name,
        email_campaign_id,
        link_url
    from all_touchpoints
)

select * from final
