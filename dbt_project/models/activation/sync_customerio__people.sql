{#- Customer.io people to identify with the computed traits, keyed by the Customer.io identifier.
    By the example company's convention the app user id is also the Customer.io id (dbt var
    `customerio_id_is_user_id`, default true), so people Customer.io has not reported on yet are
    included under their user id; a known customerio_id wins over a user id of the same value.
    Grain: one row per customerio_id. -#}

with identifiers as (
    select * from {{ ref('customer_identifiers') }}
),

customers as (
    select * from {{ ref('customers') }}
),

traits as (
    select * from {{ ref('customer_traits') }}
),

candidate_ids as (
    select customer_id, identifier_value as customerio_id, 1 as id_priority
    from identifiers
    where identifier_type = 'customerio_id'
    {%- if var('customerio_id_is_user_id', true) %}
    union all
    select customer_id, identifier_value, 2
    from identifiers
    where identifier_type = 'user_id'
    {%- endif %}
),

people as (
    select customer_id, customerio_id
    from (
        select
            customer_id,
            customerio_id,
            row_number() over (partition by customerio_id order by id_priority, customer_id) as id_rank
        from candidate_ids
    ) as ranked
    where id_rank = 1
),

final as (
    select
        people.customerio_id,
        people.customer_id,
        customers.email,
        customers.first_name,
        customers.last_name,
        traits.is_high_value,
        traits.lead_qualified,
        traits.customer_type,
        traits.lifetime_value,
        traits.coupon_usage_rate,
        traits.orders_last_365d,
        traits.last_seen_date
    from people
    inner join customers on customers.customer_id = people.customer_id
    inner join traits on traits.customer_id = people.customer_id
)

select * from final
