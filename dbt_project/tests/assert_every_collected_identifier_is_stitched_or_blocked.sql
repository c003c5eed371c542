{#- Nothing is lost: every identifier any system recorded is either a customer identifier or blocked. -#}
with links as (
    select * from {{ ref('int_identity_links_collected') }}
),

blocked as (
    select * from {{ ref('int_identifiers_blocked') }}
),

identifiers as (
    select * from {{ ref('customer_identifiers') }}
),

collected as (
    select identifier_type_a as identifier_type, identifier_value_a as identifier_value from links
    union
    select identifier_type_b, identifier_value_b from links where identifier_type_b is not null
)

select collected.*
from collected
left join identifiers
    on identifiers.identifier_type = collected.identifier_type and identifiers.identifier_value = collected.identifier_value
left join blocked
    on blocked.identifier_type = collected.identifier_type and blocked.identifier_value = collected.identifier_value
where identifiers.identifier_value is null and blocked.identifier_value is null
