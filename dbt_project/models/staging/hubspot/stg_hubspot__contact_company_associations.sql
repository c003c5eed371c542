{#- hubspot.contact_company_associations, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'contact_company_associations', hubspot_association_columns('contact_id', 'company_id')) }}
),

final as (
    select
{{ hubspot_association_renamed_columns('contact_id', 'company_id') }}
    from source
)

select * from final
