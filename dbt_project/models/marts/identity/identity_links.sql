{#- Every link that joins two identifiers of one customer, with the system that recorded it and when it
    was first and last seen. Grain: one row per link per source system (`link_id`). -#}

with links as (
    select * from {{ ref('int_identity_links_accepted') }}
),

components as (
    select * from {{ ref('int_identity_components') }}
),

final as (
    select
        links.link_id,
        components.customer_id,
        links.identifier_type_a,
        links.identifier_value_a,
        links.identifier_type_b,
        links.identifier_value_b,
        links.source_system,
        links.first_seen_at,
        links.last_seen_at,
        links.times_seen
    from links
    inner join components on components.node_key = links.node_key_a
)

select * from final
