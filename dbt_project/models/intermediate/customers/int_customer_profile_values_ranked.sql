{#- Every value any tool holds for a customer's profile traits, with the survivorship rank the
    `customers` model picks the winner by: lowest source_priority first (the system of record for that
    trait), then the most recently observed, then the smallest value (so ties are deterministic).
    Priorities: HubSpot's associated company record 1, HubSpot contact 1 (company 2), Stripe customer 2,
    Zendesk user 3 (phone 2), the app's identify traits 4, a Request a Quote's company 3. Emails are
    normalised (trimmed, lower-cased) and kept only when they are one of the customer's own email
    identifiers (a blocked, shared inbox never becomes someone's email). All values are text.
    Grain: one row per customer_id, trait_name, source_system, source_record_id, trait_value. -#}

with identifiers as (
    select * from {{ ref('customer_identifiers') }}
),

hubspot_contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
    where not coalesce(is_archived, false)
),

hubspot_owners as (
    select * from {{ ref('stg_hubspot__owners') }}
),

hubspot_companies as (
    select * from {{ ref('stg_hubspot__companies') }}
    where not coalesce(is_archived, false)
),

contact_companies as (
    select * from {{ ref('stg_hubspot__contact_company_associations') }}
),

stripe_customers as (
    select * from {{ ref('stg_stripe__customers') }}
    where not coalesce(is_deleted, false)
),

zendesk_users as (
    select * from {{ ref('stg_zendesk__users') }}
),

identifies as (
    select * from {{ ref('stg_events__identifies') }}
),

quotes as (
    select * from {{ ref('stg_events__request_a_quote') }}
),

contacts as (
    select
        identifiers.customer_id,
        hubspot_contacts.*,
        coalesce(hubspot_contacts.modified_at, hubspot_contacts.updated_at, hubspot_contacts.created_at) as observed_at
    from hubspot_contacts
    inner join identifiers
        on identifiers.identifier_type = 'hubspot_contact_id'
        and identifiers.identifier_value = {{ normalize_identifier('hubspot_contact_id', 'hubspot_contacts.contact_id') }}
),

stripe as (
    select identifiers.customer_id, stripe_customers.*
    from stripe_customers
    inner join identifiers
        on identifiers.identifier_type = 'stripe_customer_id'
        and identifiers.identifier_value = {{ normalize_identifier('stripe_customer_id', 'stripe_customers.stripe_customer_id') }}
),

zendesk as (
    select
        identifiers.customer_id,
        zendesk_users.*
    from zendesk_users
    inner join identifiers
        on identifiers.identifier_type = 'zendesk_user_id'
        and identifiers.identifier_value = {{ normalize_identifier('zendesk_user_id', 'zendesk_users.zendesk_user_id') }}
),

app_identifies as (
    select
        coalesce(by_user.customer_id, by_device.customer_id) as customer_id,
        identifies.*
    from identifies
    left join identifiers as by_user
        on by_user.identifier_type = 'user_id'
        and by_user.identifier_value = {{ normalize_identifier('user_id', 'identifies.user_id') }}
    left join identifiers as by_device
        on by_device.identifier_type = 'anonymous_id'
        and by_device.identifier_value = {{ normalize_identifier('anonymous_id', 'identifies.anonymous_id') }}
    where coalesce(identifies.library_name, '') <> '{{ identity_webhook_library() }}'
      and coalesce(by_user.customer_id, by_device.customer_id) is not null
),

app_quotes as (
    select
        coalesce(by_user.customer_id, by_device.customer_id) as customer_id,
        quotes.*
    from quotes
    left join identifiers as by_user
        on by_user.identifier_type = 'user_id'
        and by_user.identifier_value = {{ normalize_identifier('user_id', 'quotes.user_id') }}
    left join identifiers as by_device
        on by_device.identifier_type = 'anonymous_id'
        and by_device.identifier_value = {{ normalize_identifier('anonymous_id', 'quotes.anonymous_id') }}
    where coalesce(by_user.customer_id, by_device.customer_id) is not null
),

{%- set text = dbt.type_string() %}

candidates as (
    {#- (trait, value expression) per source; one select per pair keeps each rule on one line -#}
    {%- set hubspot_traits = [
        ('email', "contacts.email"),
        ('first_name', "contacts.first_name"),
        ('last_name', "contacts.last_name"),
        ('full_name', dbt.concat(["contacts.first_name", "' '", "contacts.last_name"])),
        ('phone', "coalesce(contacts.phone, contacts.mobile_phone)"),
        ('date_of_birth', "cast(contacts.date_of_birth as " ~ text ~ ")"),
        ('customer_type', "contacts.customer_type"),
        ('lead_qualified', "case when contacts.is_lead_qualified then 'true' when not contacts.is_lead_qualified then 'false' end"),
        ('lifecycle_stage', "contacts.lifecycle_stage"),
        ('account_manager_id', "contacts.owner_id"),
        ('account_manager_name', dbt.concat(["hubspot_owners.first_name", "' '", "hubspot_owners.last_name"])),
        ('account_manager_email', "lower(hubspot_owners.email)"),
        ('job_title', "contacts.job_title"),
        ('city', "contacts.city"),
        ('country', "contacts.country"),
    ] %}
    {%- for trait, expression in hubspot_traits %}
    select contacts.customer_id, '{{ trait }}' as trait_name, cast({{ expression }} as {{ text }}) as trait_value,
           'hubspot' as source_system, 1 as source_priority, contacts.contact_id as source_record_id,
           contacts.observed_at
    from contacts
    left join hubspot_owners on hubspot_owners.owner_id = contacts.owner_id
    union all
    {%- endfor %}
    select contacts.customer_id, 'company_name', hubspot_companies.company_name, 'hubspot', 1,
           hubspot_companies.company_id, coalesce(hubspot_companies.modified_at, hubspot_companies.updated_at)
    from contacts
    inner join contact_companies on contact_companies.contact_id = contacts.contact_id
    inner join hubspot_companies on hubspot_companies.company_id = contact_companies.company_id
    union all
    select customer_id, 'company_name', company_name, 'hubspot', 2, contact_id, observed_at
    from contacts
    union all
    select customer_id, 'email', email, 'stripe', 2, stripe_customer_id, created_at from stripe
    union all
    select customer_id, 'full_name', customer_name, 'stripe', 2, stripe_customer_id, created_at from stripe
    union all
    select customer_id, 'email', email, 'zendesk', 3, cast(zendesk_user_id as {{ text }}), updated_at from zendesk
    union all
    select customer_id, 'full_name', user_name, 'zendesk', 3, cast(zendesk_user_id as {{ text }}), updated_at from zendesk
    union all
    select customer_id, 'phone', phone, 'zendesk', 2, cast(zendesk_user_id as {{ text }}), updated_at from zendesk
    {%- for trait, expression in [
        ('email', 'email'), ('first_name', 'first_name'), ('last_name', 'last_name'),
        ('full_name', "coalesce(name, " ~ dbt.concat(["first_name", "' '", "last_name"]) ~ ")"), ('phone', 'phone'),
    ] %}
    union all
    select customer_id, '{{ trait }}', {{ expression }}, source, 4, message_id, coalesce(identified_at, received_at)
    from app_identifies
    {%- endfor %}
    union all
    select customer_id, 'company_name', company, source, 3, message_id, coalesce(occurred_at, received_at)
    from app_quotes
),

cleaned as (
    select
        customer_id,
        trait_name,
        case when trait_name = 'email' then {{ normalize_identifier('email', 'trait_value') }}
             else {{ trim_whitespace('trait_value') }} end as trait_value,
        source_system,
        source_priority,
        source_record_id,
        observed_at
    from candidates
),

-- an email counts only when it is one of this customer's own (unblocked) email identifiers
usable as (
    select cleaned.*
    from cleaned
    left join identifiers as emails
        on cleaned.trait_name = 'email'
        and emails.identifier_type = 'email'
        and emails.identifier_value = cleaned.trait_value
        and emails.customer_id = cleaned.customer_id
    where cleaned.trait_value is not null
      and cleaned.trait_value <> ''
      and (cleaned.trait_name <> 'email' or emails.identifier_value is not null)
),

final as (
    select
        customer_id,
        trait_name,
        trait_value,
        source_system,
        source_priority,
        source_record_id,
        observed_at,
        row_number() over (
            partition by customer_id, trait_name
            order by source_priority, observed_at desc nulls last, trait_value
        ) as survivorship_rank
    from usable
    group by customer_id, trait_name, trait_value, source_system, source_priority, source_record_id, observed_at
)

select * from final
