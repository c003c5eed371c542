{#- The CRM's segmentation (lead_qualified, customer_type) and is_high_value carried onto every identity
    of the person, so product analytics can segment events by whichever id they carry (anonymous_id,
    user_id, email, ...). Grain: one row per (identifier_type, identifier_value). -#}

with identifiers as (
    select * from {{ ref('customer_identifiers') }}
),

traits as (
    select * from {{ ref('customer_traits') }}
),

final as (
    select
        identifiers.identifier_type,
        identifiers.identifier_value,
        identifiers.customer_id,
        traits.lead_qualified,
        traits.customer_type,
        traits.is_high_value,
        traits.as_of_date
    from identifiers
    inner join traits on traits.customer_id = identifiers.customer_id
)

select * from final
