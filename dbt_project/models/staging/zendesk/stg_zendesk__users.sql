{#- zendesk.users, renamed and cast. -#}
with source as (
    {{ source_or_empty('zendesk', 'users', {
        'id': dbt.type_bigint(),
        'name': dbt.type_string(),
        'email': dbt.type_string(),
        'external_id': dbt.type_string(),
        'role': dbt.type_string(),
        'phone': dbt.type_string(),
        'organization_id': dbt.type_bigint(),
        'time_zone': dbt.type_string(),
        'locale': dbt.type_string(),
        'verified': dbt.type_boolean(),
        'active': dbt.type_boolean(),
        'suspended': dbt.type_boolean(),
        'created_at': type_timestamptz(),
        'updated_at': type_timestamptz(),
        '_dlt_load_id': dbt.type_string(),
        '_dlt_id': dbt.type_string()
    }) }}
),

final as (
    select
        id as zendesk_user_id,
        name as user_name,
        email,
        external_id,
        role,
        phone,
        organization_id,
        time_zone,
        locale,
        verified as is_verified,
        active as is_active,
        suspended as is_suspended,
        created_at,
        updated_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
