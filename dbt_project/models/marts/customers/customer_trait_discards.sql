{#- Trait values a source holds that cannot be read: a HubSpot date_of_birth that is not a date, a
    lead_qualified that is neither true nor false, an order in a currency that is not ISO 4217. Such a
    value would otherwise be a silent NULL (and a customer silently "not high-value"); here each one
    is counted with its reason, and a warning test reports them. Grain: one row per (trait_name,
    source_system, source_record_id). -#}

with contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
    where not coalesce(is_archived, false)
),

orders as (
    select * from {{ ref('customer_orders') }}
),

identifiers as (
    select * from {{ ref('customer_identifiers') }}
    where identifier_type = 'hubspot_contact_id'
),

discards as (
    select
        'date_of_birth' as trait_name,
        'hubspot' as source_system,
        contact_id as source_record_id,
        date_of_birth_raw as raw_value,
        'HubSpot date_of_birth is not a date written YYYY-MM-DD' as reason
    from contacts
    where nullif(trim(date_of_birth_raw), '') is not null and date_of_birth is null
    union all
    select
        'lead_qualified', 'hubspot', contact_id, lead_qualified_raw,
        'HubSpot lead_qualified is neither true nor false'
    from contacts
    where nullif(trim(lead_qualified_raw), '') is not null and is_lead_qualified is null
    union all
    select
        'currency', 'stripe', invoice_id, currency,
        'the Stripe invoice currency is not an ISO 4217 code, so its amounts cannot be read'
    from orders
    where currency_decimals is null
),

final as (
    select
        identifiers.customer_id,
        discards.*
    from discards
    left join identifiers
        on discards.source_system = 'hubspot'
        and identifiers.identifier_value = {{ normalize_identifier('hubspot_contact_id', 'discards.source_record_id') }}
)

select * from final
