{#- HubSpot companies to upsert with what the warehouse knows of their customers, keyed by the company's
    domain (trimmed, lower-cased, without `www.`): HubSpot's batch upsert matches a company on a property
    with unique values, which the sync keeps in its own unique property. hubspot_company_id is the
    HubSpot company the domain came from (the lowest id when HubSpot holds two with one domain).
    Customers count through HubSpot's contact-to-company associations. Grain: one row per company_domain. -#}

with companies as (
    select * from {{ ref('stg_hubspot__companies') }}
),

associations as (
    select * from {{ ref('stg_hubspot__contact_company_associations') }}
),

identifiers as (
    select * from {{ ref('customer_identifiers') }}
    where identifier_type = 'hubspot_contact_id'
),

traits as (
    select * from {{ ref('customer_traits') }}
),

company_domains as (
    select
        company_id,
        company_name,
        regexp_replace(lower({{ trim_whitespace('domain') }}), '^www\.', '') as company_domain
    from companies
    where domain is not null and {{ trim_whitespace('domain') }} <> ''
),

one_per_domain as (
    select company_domain, company_id as hubspot_company_id, company_name
    from (
        select *, row_number() over (partition by company_domain order by company_id) as domain_rank
        from company_domains
    ) as ranked
    where domain_rank = 1
),

company_customers as (
    select distinct company_domains.company_domain, identifiers.customer_id
    from company_domains
    inner join associations on associations.company_id = company_domains.company_id
    inner join identifiers
        on identifiers.identifier_value = {{ normalize_identifier('hubspot_contact_id', 'associations.contact_id') }}
),

rollup as (
    select
        company_customers.company_domain,
        count(*) as customer_count,
        sum(case when traits.is_high_value then 1 else 0 end) as high_value_customer_count,
        round(cast(sum(traits.lifetime_value) as {{ dbt.type_numeric() }}), 2) as lifetime_value
    from company_customers
    inner join traits on traits.customer_id = company_customers.customer_id
    group by 1
),

final as (
    select
        one_per_domain.company_domain,
        one_per_domain.hubspot_company_id,
        one_per_domain.company_name,
        coalesce(rollup.customer_count, 0) as customer_count,
        coalesce(rollup.high_value_customer_count, 0) as high_value_customer_count,
        coalesce(rollup.lifetime_value, 0) as lifetime_value
    from one_per_domain
    left join rollup on rollup.company_domain = one_per_domain.company_domain
)

select * from final
