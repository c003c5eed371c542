{#- Zendesk users to create or update (users/create_or_update_many matches on email) with the computed
    traits as user fields, keyed by the customer's survivorship email. Grain: one row per email. -#}

with customers as (
    select * from {{ ref('customers') }}
),

traits as (
    select * from {{ ref('customer_traits') }}
),

final as (
    select
        customers.email,
        customers.zendesk_user_id,
        customers.customer_id,
        coalesce(customers.full_name, customers.email) as name,
        customers.phone,
        traits.is_high_value,
        traits.customer_type,
        traits.lifetime_value,
        traits.orders_last_365d
    from customers
    inner join traits on traits.customer_id = customers.customer_id
    where customers.email is not null
)

select * from final
