{#- zendesk.tickets, renamed and cast. -#}
with source as (
    {{ source_or_empty('zendesk', 'tickets', {
        'id': dbt.type_bigint(),
        'subject': dbt.type_string(),
        'description': dbt.type_string(),
        'status': dbt.type_string(),
        'priority': dbt.type_string(),
        'type': dbt.type_string(),
        'requester_id': dbt.type_bigint(),
        'submitter_id': dbt.type_bigint(),
        'assignee_id': dbt.type_bigint(),
        'organization_id': dbt.type_bigint(),
        'group_id': dbt.type_bigint(),
        'external_id': dbt.type_string(),
        'via__channel': dbt.type_string(),
        'is_public': dbt.type_boolean(),
        'has_incidents': dbt.type_boolean(),
        'due_at': type_timestamptz(),
        'created_at': type_timestamptz(),
        'updated_at': type_timestamptz(),
        '_dlt_load_id': dbt.type_string(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        id as ticket_id,
        subject,
        description,
        status as ticket_status,
        priority,
        type as ticket_type,
        requester_id,
        submitter_id,
        assignee_id,
        organization_id,
        group_id,
        external_id,
        via__channel as via_channel,
        is_public,
        has_incidents,
        due_at,
        created_at,
        updated_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
