{#- Every known identifier and the customer it belongs to. Grain: one row per
    (identifier_type, identifier_value). Blocked values are not here (see `int_identifiers_blocked`). -#}

with identifiers as (
    select * from {{ ref('int_identifiers_accepted') }}
),

components as (
    select * from {{ ref('int_identity_components') }}
),

final as (
    select
        identifiers.identifier_type,
        identifiers.identifier_value,
        components.customer_id,
        identifiers.first_seen_at,
        identifiers.last_seen_at,
        identifiers.sources
    from identifiers
    inner join components on components.node_key = identifiers.node_key
)

select * from final
