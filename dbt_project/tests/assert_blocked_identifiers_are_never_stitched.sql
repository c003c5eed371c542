{#- No blocked value is a customer identifier or a side of a link. -#}
with blocked as (
    select * from {{ ref('int_identifiers_blocked') }}
),

identifiers as (
    select * from {{ ref('customer_identifiers') }}
),

links as (
    select * from {{ ref('identity_links') }}
)

select blocked.identifier_type, blocked.identifier_value, 'customer_identifiers' as found_in
from blocked
inner join identifiers
    on identifiers.identifier_type = blocked.identifier_type and identifiers.identifier_value = blocked.identifier_value
union all
select blocked.identifier_type, blocked.identifier_value, 'identity_links'
from blocked
inner join links
    on (links.identifier_type_a = blocked.identifier_type and links.identifier_value_a = blocked.identifier_value)
    or (links.identifier_type_b = blocked.identifier_type and links.identifier_value_b = blocked.identifier_value)
