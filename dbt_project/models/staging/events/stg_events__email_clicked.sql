{#- events.email_clicked, renamed and cast. Grain: one row per message_id. -#}
{{ stg_email_event('email_clicked', ['link_url', 'link_id']) }}
