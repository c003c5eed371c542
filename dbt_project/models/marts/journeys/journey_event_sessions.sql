{#- Web and app sessions (30-minute inactivity rule, see journey_event_touchpoints): one row per session
    with its span, landing page, campaign and counts. Incremental like the touchpoints: a run rebuilds
    every session that has a touchpoint received in [min_date, max_date] (macro events_date_range; or, without them,
    on or after the newest received date already built), from all of that session's touchpoints.
    DuckDB SQL (arg_min over a (occurred_at, touchpoint_id) row). Grain: one row per session_id. -#}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='session_id',
    on_schema_change='append_new_columns',
    tags=['events_daily'],
) }}
{%- set dates = events_date_range() -%}
{%- set float = dbt.type_float() -%}

{%- set touchpoints = ref('journey_event_touchpoints') -%}
{%- set rebuild_touched = dates is not none or is_incremental() -%}
{%- if rebuild_touched -%}
    {%- if dates is not none -%}
        {%- set touched_filter = "received_date between cast('" ~ dates.min ~ "' as date) and cast('" ~ dates.max ~ "' as date)" -%}
    {%- else -%}
        {%- set touched_filter = "received_date >= (select max(last_received_date) from " ~ this ~ ")" -%}
    {%- endif -%}
    {#- the earliest received date of any touched session, looked up before the build and written as a
        literal, so that the scan of the touchpoints skips the row groups of older days -#}
    {%- set since = '0001-01-01' -%}
    {%- if execute and is_incremental() -%}
        {%- set since_sql -%}
            select cast(min(since) as {{ dbt.type_string() }}) from (
                select min(built.first_received_date) as since
                from {{ this }} as built
                where built.session_id in (select session_id from {{ touchpoints }} where session_id is not null and {{ touched_filter }})
                union all
                select min(received_date) from {{ touchpoints }} where session_id is not null and {{ touched_filter }}
            ) as candidates
        {%- endset -%}
        {%- set since = run_query(since_sql).columns[0].values()[0] or '0001-01-01' -%}
    {%- endif -%}
{%- endif %}

with
{%- if rebuild_touched %}

touched_sessions as (
    select distinct session_id from {{ touchpoints }}
    where session_id is not null and {{ touched_filter }}
),
{%- endif %}

session_touchpoints as (
    select touchpoints.*
    from {{ touchpoints }} as touchpoints
{%- if rebuild_touched %}
    inner join touched_sessions on touched_sessions.session_id = touchpoints.session_id
    where touchpoints.received_date >= cast('{{ since }}' as date)
{%- else %}
    where touchpoints.session_id is not null
{%- endif %}
),

-- one aggregation pass; the landing touchpoint's values are those of the earliest (occurred_at, id)
final as (
    select
        session_id,
        arg_min(session_key, (occurred_at, touchpoint_id)) as session_key,
        arg_min(anonymous_id, (occurred_at, touchpoint_id)) as anonymous_id,
        -- the person behind the device once they signed in during the session
        max(user_id) as user_id,
        arg_min(source, (occurred_at, touchpoint_id)) as source,
        arg_min(channel, (occurred_at, touchpoint_id)) as channel,
        arg_min(device_type, (occurred_at, touchpoint_id)) as device_type,
        arg_min(os_name, (occurred_at, touchpoint_id)) as os_name,
        min(occurred_at) as started_at,
        max(occurred_at) as ended_at,
        {{ dbt.datediff('min(occurred_at)', 'max(occurred_at)', 'second') }} as duration_seconds,
        count(*) as touchpoints,
        sum(case when touchpoint_type = 'page_view' then 1 else 0 end) as page_views,
        sum(case when touchpoint_type = 'screen_view' then 1 else 0 end) as screen_views,
        sum(case when touchpoint_type = 'track' then 1 else 0 end) as tracks,
        arg_min(page_path, (occurred_at, touchpoint_id)) as landing_page_path,
        arg_min(page_referrer, (occurred_at, touchpoint_id)) as landing_page_referrer,
        arg_min(utm_source, (occurred_at, touchpoint_id)) as utm_source,
        arg_min(utm_medium, (occurred_at, touchpoint_id)) as utm_medium,
        arg_min(utm_campaign, (occurred_at, touchpoint_id)) as utm_campaign,
        min(received_date) as first_received_date,
        max(received_date) as last_received_date
    from session_touchpoints
    group by session_id
)

select * from final
