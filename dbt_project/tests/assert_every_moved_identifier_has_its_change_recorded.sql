{#- A customer id changes only through a recorded merge or split: an identifier whose customer_id differs
    from the previous build's carries the change that moved it, and one that did not move carries none. -#}
select node_key, previous_customer_id, customer_id, change_type
from {{ ref('int_identity_components') }}
where (previous_customer_id <> customer_id and change_type is null)
   or (change_type is not null and (previous_customer_id is null or previous_customer_id = customer_id))
