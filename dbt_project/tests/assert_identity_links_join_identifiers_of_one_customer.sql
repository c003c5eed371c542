{#- Both identifiers of every link belong to the link's customer. -#}
with links as (
    select * from {{ ref('identity_links') }}
),

identifiers as (
    select * from {{ ref('customer_identifiers') }}
)

select links.link_id, links.customer_id, side_a.customer_id as customer_id_a, side_b.customer_id as customer_id_b
from links
left join identifiers as side_a
    on side_a.identifier_type = links.identifier_type_a and side_a.identifier_value = links.identifier_value_a
left join identifiers as side_b
    on side_b.identifier_type = links.identifier_type_b and side_b.identifier_value = links.identifier_value_b
where side_a.customer_id is null
   or side_b.customer_id is null
   or side_a.customer_id <> links.customer_id
   or side_b.customer_id <> links.customer_id
