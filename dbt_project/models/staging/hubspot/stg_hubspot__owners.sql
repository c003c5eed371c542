{#- hubspot.owners, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'owners', hubspot_object_columns({
        'id': dbt.type_string(),
        'email': dbt.type_string(),
        'first_name': dbt.type_string(),
        'last_name': dbt.type_string(),
        'user_id': dbt.type_bigint()
    })) }}
),

final as (
    select
        id as owner_id,
        email,
        first_name,
        last_name,
        user_id as hubspot_user_id,
{{ hubspot_object_renamed_columns() }}
    from source
)

select * from final
