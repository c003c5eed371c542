{#- Every identifier seen in any system that is not blocked: the nodes of the identity graph.
    Grain: one row per (identifier_type, identifier_value). -#}

with links as (
    select * from {{ ref('int_identity_links_collected') }}
),

blocked as (
    select * from {{ ref('int_identifiers_blocked') }}
),

sightings as (
    select source_system, identifier_type_a as identifier_type, identifier_value_a as identifier_value,
           first_seen_at, last_seen_at
    from links
    union all
    select source_system, identifier_type_b, identifier_value_b, first_seen_at, last_seen_at
    from links
    where identifier_type_b is not null
),

accepted as (
    select sightings.*
    from sightings
    left join blocked
        on blocked.identifier_type = sightings.identifier_type
        and blocked.identifier_value = sightings.identifier_value
    where blocked.identifier_value is null
),

per_source as (
    select identifier_type, identifier_value, source_system,
           min(first_seen_at) as first_seen_at, max(last_seen_at) as last_seen_at
    from accepted
    group by identifier_type, identifier_value, source_system
),

final as (
    select
        identifier_type,
        identifier_value,
        {{ identity_node_key('identifier_type', 'identifier_value') }} as node_key,
        min(first_seen_at) as first_seen_at,
        max(last_seen_at) as last_seen_at,
        {{ dbt.listagg('source_system', "','", 'order by source_system') }} as sources
    from per_source
    group by identifier_type, identifier_value
)

select * from final
