{#- events.email_opened, renamed and cast. Grain: one row per message_id. -#}
{{ stg_email_event('email_opened') }}
