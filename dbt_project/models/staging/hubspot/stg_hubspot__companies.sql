{#- hubspot.companies, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'companies', hubspot_object_columns({
        'id': dbt.type_string(),
        'properties__name': dbt.type_string(),
        'properties__domain': dbt.type_string(),
        'properties__website': dbt.type_string(),
        'properties__industry': dbt.type_string(),
        'properties__city': dbt.type_string(),
        'properties__state': dbt.type_string(),
        'properties__country': dbt.type_string(),
        'properties__numberofemployees': dbt.type_string(),
        'properties__annualrevenue': dbt.type_string(),
        'properties__lifecyclestage': dbt.type_string(),
        'properties__hubspot_owner_id': dbt.type_string()
    })) }}
),

final as (
    select
        id as company_id,
        properties__name as company_name,
        properties__domain as domain,
        properties__website as website,
        properties__industry as industry,
        properties__city as city,
        properties__state as state,
        properties__country as country,
        {{ dbt.safe_cast('properties__numberofemployees', dbt.type_bigint()) }} as number_of_employees,
        {{ dbt.safe_cast('properties__annualrevenue', dbt.type_numeric()) }} as annual_revenue,
        properties__lifecyclestage as lifecycle_stage,
        properties__hubspot_owner_id as owner_id,
        {{ hubspot_object_renamed_columns() }}
    from source
)

select * from final
