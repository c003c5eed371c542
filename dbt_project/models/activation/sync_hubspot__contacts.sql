{#- HubSpot contacts to upsert with the computed traits, keyed by the customer's email (the
    survivorship email, one of their own email identifiers, so no two customers share it).
    hubspot_contact_id is the live HubSpot contact that holds that very email (HubSpot keeps emails
    unique), never another contact of the same customer. Numbers are rounded to what the sync sends
    (money to cents, rates to 4 places) so float noise never looks like a change.
    lead_qualified and customer_type come from HubSpot and are not sent back. Grain: one row per email. -#}

with customers as (
    select * from {{ ref('customers') }}
),

traits as (
    select * from {{ ref('customer_traits') }}
),

hubspot_contacts as (
    select
        {{ normalize_identifier('email', 'email') }} as email,
        min(contact_id) as hubspot_contact_id
    from {{ ref('stg_hubspot__contacts') }}
    where email is not null
    group by 1
),

final as (
    select
        customers.email,
        hubspot_contacts.hubspot_contact_id,
        customers.customer_id,
        customers.first_name,
        customers.last_name,
        traits.is_high_value,
        round(cast(traits.lifetime_value as {{ dbt.type_numeric() }}), 2) as lifetime_value,
        round(cast(traits.margin as {{ dbt.type_numeric() }}), 2) as margin,
        round(cast(traits.coupon_usage_rate as {{ dbt.type_numeric() }}), 4) as coupon_usage_rate,
        traits.orders_last_365d,
        traits.last_seen_date
    from customers
    inner join traits on traits.customer_id = customers.customer_id
    left join hubspot_contacts on hubspot_contacts.email = customers.email
    where customers.email is not null
)

select * from final
