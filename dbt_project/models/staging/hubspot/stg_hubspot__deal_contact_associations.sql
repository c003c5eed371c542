{#- hubspot.deal_contact_associations, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'deal_contact_associations', hubspot_association_columns('deal_id', 'contact_id')) }}
),

final as (
    select
{{ hubspot_association_renamed_columns('deal_id', 'contact_id') }}
    from source
)

select * from final
