{#- Web and app sessions (30-minute inactivity rule, see journey_event_touchpoints): one row per session
    with its span, landing page, campaign and counts. Incremental like the touchpoints: a run rebuilds
    every session that has a touchpoint received in [var min_date, var max_date] (or, without the vars,
    on or after the newest received date already built), from all of that session's touchpoints.
    Grain: one row per session_id. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='session_id',
    on_schema_change='append_new_columns',
    tags=['events_daily'],
) }}
{%- set min_date = var('min_date', none) -%}
{%- set max_date = var('max_date', none) -%}
{%- set float = dbt.type_float() -%}

with touchpoints as (
    select * from {{ ref('journey_event_touchpoints') }}
    where session_id is not null
),

{%- if min_date is not none %}
touched_sessions as (
    select distinct session_id from touchpoints
    where received_date between cast('{{ min_date }}' as date) and cast('{{ max_date }}' as date)
),
{%- elif is_incremental() %}
touched_sessions as (
    select distinct session_id from touchpoints
    where received_date >= (select max(last_received_date) from {{ this }})
),
{%- endif %}

session_touchpoints as (
    select
        touchpoints.*,
        row_number() over (partition by touchpoints.session_id
                           order by touchpoints.occurred_at, touchpoints.touchpoint_id) as position_in_session
    from touchpoints
{%- if min_date is not none or is_incremental() %}
    inner join touched_sessions on touched_sessions.session_id = touchpoints.session_id
{%- endif %}
),

first_touchpoints as (
    select * from session_touchpoints where position_in_session = 1
),

totals as (
    select
        session_id,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        count(*) as touchpoints,
        sum(case when touchpoint_type = 'page_view' then 1 else 0 end) as page_views,
        sum(case when touchpoint_type = 'screen_view' then 1 else 0 end) as screen_views,
        sum(case when touchpoint_type = 'track' then 1 else 0 end) as tracks,
        -- the person behind the device once they signed in during the session
        max(user_id) as user_id,
        min(received_date) as first_received_date,
        max(received_date) as last_received_date
    from session_touchpoints
    group by session_id
),

final as (
    select
        totals.session_id,
        first_touchpoints.session_key,
        first_touchpoints.anonymous_id,
        totals.user_id,
        first_touchpoints.source,
        first_touchpoints.channel,
        first_touchpoints.device_type,
        first_touchpoints.os_name,
        totals.started_at,
        totals.ended_at,
        {{ dbt.datediff('totals.started_at', 'totals.ended_at', 'second') }} as duration_seconds,
        totals.touchpoints,
        totals.page_views,
        totals.screen_views,
        totals.tracks,
        first_touchpoints.page_path as landing_page_path,
        first_touchpoints.page_referrer as landing_page_referrer,
        first_touchpoints.utm_source,
        first_touchpoints.utm_medium,
        first_touchpoints.utm_campaign,
        totals.first_received_date,
        totals.last_received_date
    from totals
    inner join first_touchpoints on first_touchpoints.session_id = totals.session_id
)

select * from final
