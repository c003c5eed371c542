{#- Both identifiers of every merge belong to the merge's customer. -#}
with merges as (
    select * from {{ ref('identity_merges') }}
),

identifiers as (
    select * from {{ ref('customer_identifiers') }}
)

select merges.merge_id, merges.customer_id, side_a.customer_id as customer_id_a, side_b.customer_id as customer_id_b
from merges
left join identifiers as side_a
    on side_a.identifier_type = merges.identifier_type_a and side_a.identifier_value = merges.identifier_value_a
left join identifiers as side_b
    on side_b.identifier_type = merges.identifier_type_b and side_b.identifier_value = merges.identifier_value_b
where side_a.customer_id is null
   or side_b.customer_id is null
   or side_a.customer_id <> merges.customer_id
   or side_b.customer_id <> merges.customer_id
