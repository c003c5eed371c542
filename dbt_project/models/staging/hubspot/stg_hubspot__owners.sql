{#- hubspot.owners, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'owners', {
        'id': dbt.type_string(),
        'email': dbt.type_string(),
        'first_name': dbt.type_string(),
        'last_name': dbt.type_string(),
        'user_id': dbt.type_bigint(),
        'archived': dbt.type_boolean(),
        'created_at': type_timestamptz(),
        'updated_at': type_timestamptz(),
        'modified_at': type_timestamptz(),
        '_dlt_load_id': dbt.type_string(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        id as owner_id,
        email,
        first_name,
        last_name,
        user_id as hubspot_user_id,
        archived as is_archived,
        created_at,
        updated_at,
        modified_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
