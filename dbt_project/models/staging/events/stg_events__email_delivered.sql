{#- events.email_delivered, renamed and cast. Grain: one row per message_id. -#}
{{ stg_email_event('email_delivered') }}
