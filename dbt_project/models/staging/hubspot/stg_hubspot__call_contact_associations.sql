{#- hubspot.call_contact_associations, renamed and cast. -#}
with source as (
    {{ source_or_empty('hubspot', 'call_contact_associations', hubspot_association_columns('call_id', 'contact_id')) }}
),

final as (
    select
{{ hubspot_association_renamed_columns('call_id', 'contact_id') }}
    from source
)

select * from final
