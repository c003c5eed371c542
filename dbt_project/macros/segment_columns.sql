{#- The columns every Segment-shaped events table has (message fields and the flattened context),
    as {raw name: type} for `source_or_empty`, plus `extra` (the table's own columns). -#}
{% macro segment_source_columns(extra=none) -%}
    {%- set text, tstz = dbt.type_string(), type_timestamptz() -%}
    {%- set columns = {
        'id': text, 'anonymous_id': text, 'user_id': text, 'timestamp': tstz, 'received_at': tstz,
        'sent_at': tstz, 'original_timestamp': tstz, 'uuid_ts': tstz, 'source': text,
        'context_library_name': text, 'context_library_version': text, 'context_ip': text,
        'context_user_agent': text, 'context_locale': text, 'context_timezone': text,
        'context_device_id': text, 'context_device_type': text, 'context_device_manufacturer': text,
        'context_device_model': text, 'context_os_name': text, 'context_os_version': text,
        'context_app_name': text, 'context_app_version': text, 'context_page_path': text,
        'context_page_url': text, 'context_page_referrer': text, 'context_page_title': text,
        'context_page_search': text, 'context_campaign_name': text, 'context_campaign_source': text,
        'context_campaign_medium': text, 'context_campaign_term': text, 'context_campaign_content': text,
        'context_traits_email': text, 'context_traits_stripe_customer_id': text,
    } -%}
    {%- do columns.update(extra or {}) -%}
    {{ return(columns) }}
{%- endmacro %}


{#- The renamed common columns of a Segment-shaped table; `occurred_at` names its `timestamp`. -#}
{% macro segment_renamed_columns(occurred_at='occurred_at') -%}
        id as message_id,
        anonymous_id,
        user_id,
        {{ adapter.quote("timestamp") }} as {{ occurred_at }},
        received_at,
        sent_at,
        original_timestamp,
        uuid_ts as loaded_at,
        source,
        context_library_name as library_name,
        context_library_version as library_version,
        context_ip as ip,
        context_user_agent as user_agent,
        context_locale as locale,
        context_timezone as timezone,
        context_device_id as device_id,
        context_device_type as device_type,
        context_device_manufacturer as device_manufacturer,
        context_device_model as device_model,
        context_os_name as os_name,
        context_os_version as os_version,
        context_app_name as app_name,
        context_app_version as app_version,
        context_page_path as page_path,
        context_page_url as page_url,
        context_page_referrer as page_referrer,
        context_page_title as page_title,
        context_page_search as page_search,
        context_campaign_name as utm_campaign,
        context_campaign_source as utm_source,
        context_campaign_medium as utm_medium,
        context_campaign_term as utm_term,
        context_campaign_content as utm_content,
        context_traits_email as context_email,
        context_traits_stripe_customer_id as context_stripe_customer_id
{%- endmacro %}
