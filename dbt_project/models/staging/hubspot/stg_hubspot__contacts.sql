{#- hubspot.contacts, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'contacts', hubspot_object_columns({
        'id': dbt.type_string(),
        'properties__email': dbt.type_string(),
        'properties__firstname': dbt.type_string(),
        'properties__lastname': dbt.type_string(),
        'properties__phone': dbt.type_string(),
        'properties__mobilephone': dbt.type_string(),
        'properties__company': dbt.type_string(),
        'properties__jobtitle': dbt.type_string(),
        'properties__city': dbt.type_string(),
        'properties__state': dbt.type_string(),
        'properties__country': dbt.type_string(),
        'properties__zip': dbt.type_string(),
        'properties__date_of_birth': dbt.type_string(),
        'properties__customer_type': dbt.type_string(),
        'properties__lead_qualified': dbt.type_string(),
        'properties__lifecyclestage': dbt.type_string(),
        'properties__hs_lead_status': dbt.type_string(),
        'properties__hubspot_owner_id': dbt.type_string()
    })) }}
),

final as (
    select
        id as contact_id,
        properties__email as email,
        properties__firstname as first_name,
        properties__lastname as last_name,
        properties__phone as phone,
        properties__mobilephone as mobile_phone,
        properties__company as company_name,
        properties__jobtitle as job_title,
        properties__city as city,
        properties__state as state,
        properties__country as country,
        properties__zip as zip,
        {{ dbt.safe_cast('properties__date_of_birth', 'date') }} as date_of_birth,
        properties__date_of_birth as date_of_birth_raw,
        properties__customer_type as customer_type,
        case lower(properties__lead_qualified) when 'true' then true when 'false' then false end as is_lead_qualified,
        properties__lead_qualified as lead_qualified_raw,
        properties__lifecyclestage as lifecycle_stage,
        properties__hs_lead_status as lead_status,
        properties__hubspot_owner_id as owner_id,
        {{ hubspot_object_renamed_columns() }}
    from source
)

select * from final
