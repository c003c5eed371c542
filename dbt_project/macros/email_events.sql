{#- Staging of one Customer.io email event table (email_delivered, email_opened, email_clicked):
    the Segment message columns plus the email's campaign and delivery fields, and `extra_columns`
    (names of further text columns, e.g. the link of a click). Grain: one row per message_id. -#}
{% macro stg_email_event(table_name, extra_columns=[]) -%}
{%- set columns = ['campaign_id', 'action_id', 'broadcast_id', 'newsletter_id', 'subject', 'delivery_id',
                   'recipient', 'email', 'cio_id'] + extra_columns -%}
{%- set types = {'event': dbt.type_string(), 'event_text': dbt.type_string()} -%}
{%- for column in columns -%}{%- do types.update({column: dbt.type_string()}) -%}{%- endfor -%}
with source as (
    {{ source_or_empty('events', table_name, segment_source_columns(types)) }}
),

final as (
    select
        {{ segment_renamed_columns('occurred_at') }},
        event as event_name,
        event_text,
        {{ columns | join(',\n        ') }}
    from source
)

select * from final
{%- endmacro %}
