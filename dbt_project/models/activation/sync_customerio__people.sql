{#- Customer.io people to identify with the computed traits: one person per customer, under one
    Customer.io id. The id is the one Customer.io already reported for the customer (the most recently
    seen customerio_id), else, by the example company's convention that the app user id is the Customer.io
    id (dbt var `customerio_id_is_user_id`, default true), the customer's most recently seen user id. So a
    customer whose app user id changed through an alias chain stays one person, not one per user_id.
    Money is rounded to cents and rates to 4 places, as the sync sends them. Grain: one row per customer_id. -#}

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
    select customer_id, identifier_value as customerio_id, 1 as id_priority, last_seen_at
    from identifiers
    where identifier_type = 'customerio_id'
    {%- if var('customerio_id_is_user_id', true) %}
    union all
    select customer_id, identifier_value, 2, last_seen_at
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
            row_number() over (partition by customer_id
                               order by id_priority, last_seen_at desc nulls last, customerio_id) as id_rank
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
        cast(round(traits.lifetime_value, 2) as decimal(18, 2)) as lifetime_value,
        cast(round(traits.coupon_usage_rate, 4) as decimal(18, 4)) as coupon_usage_rate,
        traits.orders_last_365d,
        traits.last_seen_date
    from people
    inner join customers on customers.customer_id = people.customer_id
    inner join traits on traits.customer_id = people.customer_id
)

select * from final
