{#- Zendesk users to create or update (users/create_or_update_many) with the computed traits as user
    fields, one per customer. Zendesk matches a user on its id first, then external_id, then email, so
    the model carries all three: `zendesk_user_id` (the customer's Zendesk user, when identity stitching
    found one), `external_id` (the one that user already has, else the customer's app user id, the
    example company's convention) and the survivorship email. The account manager is the HubSpot owner of
    the customer's contact, else the owner of a company the contact belongs to (the lowest company id).
    `name` falls back to the email because Zendesk requires one; lifetime value is rounded to cents, as
    Zendesk's decimal field stores it. Grain: one row per customer_id. -#}

with customers as (
    select * from {{ ref('customers') }}
),

traits as (
    select * from {{ ref('customer_traits') }}
),

identifiers as (
    select * from {{ ref('customer_identifiers') }}
    where identifier_type = 'hubspot_contact_id'
),

zendesk_users as (
    select cast(zendesk_user_id as {{ dbt.type_string() }}) as zendesk_user_id, external_id
    from {{ ref('stg_zendesk__users') }}
),

contact_companies as (
    select * from {{ ref('stg_hubspot__contact_company_associations') }}
),

companies as (
    select * from {{ ref('stg_hubspot__companies') }}
    where not coalesce(is_archived, false)
),

owners as (
    select * from {{ ref('stg_hubspot__owners') }}
),

-- the owner of a company one of the customer's contacts belongs to, for customers whose contact has none
company_managers as (
    select customer_id, manager_name, manager_email
    from (
        select
            identifiers.customer_id,
            {{ dbt.concat(["owners.first_name", "' '", "owners.last_name"]) }} as manager_name,
            lower(owners.email) as manager_email,
            row_number() over (partition by identifiers.customer_id order by companies.company_id) as company_rank
        from identifiers
        inner join contact_companies on contact_companies.contact_id = identifiers.identifier_value
        inner join companies on companies.company_id = contact_companies.company_id
        inner join owners on owners.owner_id = companies.owner_id
    ) as ranked
    where company_rank = 1
),

final as (
    select
        customers.customer_id,
        customers.zendesk_user_id,
        coalesce(zendesk_users.external_id, customers.user_id) as external_id,
        customers.email,
        coalesce(customers.full_name, customers.email) as name,
        customers.phone,
        traits.is_high_value,
        traits.customer_type,
        cast(round(traits.lifetime_value, 2) as decimal(18, 2)) as lifetime_value,
        traits.orders_last_365d,
        case when customers.account_manager_email is not null then customers.account_manager_name
             else company_managers.manager_name end as account_manager_name,
        coalesce(customers.account_manager_email, company_managers.manager_email) as account_manager_email
    from customers
    inner join traits on traits.customer_id = customers.customer_id
    left join zendesk_users on zendesk_users.zendesk_user_id = customers.zendesk_user_id
    left join company_managers on company_managers.customer_id = customers.customer_id
    where customers.email is not null or customers.zendesk_user_id is not null
)

select * from final
