{#- The links that join identifiers: both sides present, neither side blocked, not a self-link.
    Grain: one row per link per source system (as in `int_identity_links_collected`). -#}

with links as (
    select * from {{ ref('int_identity_links_collected') }}
),

blocked as (
    select * from {{ ref('int_identifiers_blocked') }}
),

accepted as (
    select links.*
    from links
    left join blocked as blocked_a
        on blocked_a.identifier_type = links.identifier_type_a
        and blocked_a.identifier_value = links.identifier_value_a
    left join blocked as blocked_b
        on blocked_b.identifier_type = links.identifier_type_b
        and blocked_b.identifier_value = links.identifier_value_b
    where links.identifier_type_b is not null
      and blocked_a.identifier_value is null
      and blocked_b.identifier_value is null
      and not (links.identifier_type_a = links.identifier_type_b
               and links.identifier_value_a = links.identifier_value_b)
),

final as (
    select
        link_id,
        source_system,
        identifier_type_a,
        identifier_value_a,
        identifier_type_b,
        identifier_value_b,
        {{ identity_node_key('identifier_type_a', 'identifier_value_a') }} as node_key_a,
        {{ identity_node_key('identifier_type_b', 'identifier_value_b') }} as node_key_b,
        first_seen_at,
        last_seen_at,
        times_seen
    from accepted
)

select * from final
