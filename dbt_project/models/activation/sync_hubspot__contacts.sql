{#- HubSpot contacts to upsert with the computed traits, keyed by the customer's email (the
    survivorship email, one of their own email identifiers, so no two customers share it).
    lead_qualified and customer_type come from HubSpot and are not sent back. Grain: one row per email. -#}

with customers as (
    select * from {{ ref('customers') }}
),

traits as (
    select * from {{ ref('customer_traits') }}
),

final as (
    select
        customers.email,
        customers.hubspot_contact_id,
        customers.customer_id,
        customers.first_name,
        customers.last_name,
        traits.is_high_value,
        traits.lifetime_value,
        traits.margin,
        traits.coupon_usage_rate,
        traits.orders_last_365d,
        traits.last_seen_date
    from customers
    inner join traits on traits.customer_id = customers.customer_id
    where customers.email is not null
)

select * from final
