{#- Every pair of identifiers a system recorded together, and every identifier seen alone, from
    every system, with values normalised (emails trimmed and lower-cased, ids trimmed). Nothing is
    blocked here: `int_identifiers_blocked` decides which values may join. -#}
{%- set webhook_library = identity_webhook_library() -%}

with identifies as (
    select * from {{ ref('stg_events__identifies') }}
),

tracks as (
    select * from {{ ref('stg_events__tracks') }}
),

pages as (
    select * from {{ ref('stg_events__pages') }}
),

screens as (
    select * from {{ ref('stg_events__screens') }}
),

groups as (
    select * from {{ ref('stg_events__groups') }}
),

aliases as (
    select * from {{ ref('stg_events__aliases') }}
),

hubspot_contacts as (
    select * from {{ ref('stg_hubspot__contacts') }}
),

stripe_customers as (
    select * from {{ ref('stg_stripe__customers') }}
),

stripe_invoices as (
    select * from {{ ref('stg_stripe__invoices') }}
),

zendesk_users as (
    select * from {{ ref('stg_zendesk__users') }}
),

-- The app's own calls; tracks made from SaaS webhooks carry that tool's ids instead.
app_messages as (
    select source, anonymous_id, user_id, coalesce(identified_at, received_at) as observed_at
    from identifies
    where coalesce(library_name, '') <> '{{ webhook_library }}'
    union all
    select source, anonymous_id, user_id, coalesce(occurred_at, received_at)
    from tracks
    where coalesce(library_name, '') <> '{{ webhook_library }}'
    union all
    select source, anonymous_id, user_id, coalesce(viewed_at, received_at)
    from pages
    where coalesce(library_name, '') <> '{{ webhook_library }}'
    union all
    select source, anonymous_id, user_id, coalesce(viewed_at, received_at)
    from screens
    where coalesce(library_name, '') <> '{{ webhook_library }}'
    union all
    select source, anonymous_id, user_id, coalesce(grouped_at, received_at)
    from groups
    where coalesce(library_name, '') <> '{{ webhook_library }}'
),

-- An alias's previous_id is a user id when that value is used as a user id anywhere, else an anonymous id.
known_user_ids as (
    select distinct {{ normalize_identifier('user_id', 'user_id') }} as user_id
    from app_messages
    where user_id is not null
    union
    select distinct {{ normalize_identifier('user_id', 'user_id') }}
    from aliases
    where user_id is not null
),

identifies_with_email as (
    select
        *,
        {{ normalize_identifier('user_id', 'user_id') }} as user_id_value,
        user_id is not null
            and {{ identity_placeholder_reason("'user_id'", normalize_identifier('user_id', 'user_id')) }} is null
            as has_user_id
    from identifies
    where email is not null
      and coalesce(library_name, '') <> '{{ webhook_library }}'
),

pairs as (
    select
        source as source_system, observed_at,
        'anonymous_id' as type_a, {{ normalize_identifier('anonymous_id', 'anonymous_id') }} as value_a,
        'user_id' as type_b, {{ normalize_identifier('user_id', 'user_id') }} as value_b
    from app_messages

    union all

    select
        aliases.source, coalesce(aliases.aliased_at, aliases.received_at),
        case when known_user_ids.user_id is not null then 'user_id' else 'anonymous_id' end,
        {{ normalize_identifier('anonymous_id', 'aliases.previous_id') }},
        'user_id', {{ normalize_identifier('user_id', 'aliases.user_id') }}
    from aliases
    left join known_user_ids
        on known_user_ids.user_id = {{ normalize_identifier('user_id', 'aliases.previous_id') }}

    union all

    -- identify traits: the email belongs to the user, or to the device before sign-in (also when
    -- the app sent a placeholder such as "undefined" as its user id)
    select
        source, coalesce(identified_at, received_at),
        case when has_user_id then 'user_id' else 'anonymous_id' end,
        case when has_user_id then user_id_value else {{ normalize_identifier('anonymous_id', 'anonymous_id') }} end,
        'email', {{ normalize_identifier('email', 'email') }}
    from identifies_with_email

    union all

    -- Customer.io reporting webhooks: the user id is the Customer.io identifier
    select
        source, coalesce(occurred_at, received_at),
        'customerio_id', {{ normalize_identifier('customerio_id', 'user_id') }},
        'email', {{ normalize_identifier('email', 'context_email') }}
    from tracks
    where library_name = '{{ webhook_library }}'
      and source in {{ sql_string_list(identity_customerio_sources()) }}

    union all

    -- Stripe webhooks (Order Completed, ...) name the customer and the invoice's email
    select
        source, coalesce(occurred_at, received_at),
        'stripe_customer_id', {{ normalize_identifier('stripe_customer_id', 'context_stripe_customer_id') }},
        'email', {{ normalize_identifier('email', 'context_email') }}
    from tracks
    where library_name = '{{ webhook_library }}'
      and context_stripe_customer_id is not null

    union all

    select
        'hubspot', created_at,
        'hubspot_contact_id', {{ normalize_identifier('hubspot_contact_id', 'contact_id') }},
        'email', {{ normalize_identifier('email', 'email') }}
    from hubspot_contacts

    union all

    select
        'hubspot', coalesce(modified_at, updated_at),
        'hubspot_contact_id', {{ normalize_identifier('hubspot_contact_id', 'contact_id') }},
        'email', {{ normalize_identifier('email', 'email') }}
    from hubspot_contacts

    union all

    select
        'stripe', created_at,
        'stripe_customer_id', {{ normalize_identifier('stripe_customer_id', 'stripe_customer_id') }},
        'email', {{ normalize_identifier('email', 'email') }}
    from stripe_customers

    union all

    select
        'stripe', created_at,
        'stripe_customer_id', {{ normalize_identifier('stripe_customer_id', 'stripe_customer_id') }},
        'email', {{ normalize_identifier('email', 'customer_email') }}
    from stripe_invoices

    union all

    select
        'zendesk', created_at,
        'zendesk_user_id', {{ normalize_identifier('zendesk_user_id', 'zendesk_user_id') }},
        'email', {{ normalize_identifier('email', 'email') }}
    from zendesk_users

    union all

    select
        'zendesk', updated_at,
        'zendesk_user_id', {{ normalize_identifier('zendesk_user_id', 'zendesk_user_id') }},
        'email', {{ normalize_identifier('email', 'email') }}
    from zendesk_users
),

-- A pair with one side missing is a sighting of the other side alone (kept as side a).
oriented as (
    select
        source_system,
        observed_at,
        case when value_a is not null then type_a else type_b end as identifier_type_a,
        coalesce(value_a, value_b) as identifier_value_a,
        case when value_a is not null and value_b is not null then type_b end as identifier_type_b,
        case when value_a is not null then value_b end as identifier_value_b
    from pairs
    where coalesce(value_a, value_b) is not null
),

final as (
    select
        {{ dbt.hash(dbt.concat([
            "source_system", "'|'", "identifier_type_a", "'|'", "identifier_value_a", "'|'",
            "coalesce(identifier_type_b, '')", "'|'", "coalesce(identifier_value_b, '')"])) }} as link_id,
        source_system,
        identifier_type_a,
        identifier_value_a,
        identifier_type_b,
        identifier_value_b,
        min(observed_at) as first_seen_at,
        max(observed_at) as last_seen_at,
        count(*) as times_seen
    from oriented
    group by source_system, identifier_type_a, identifier_value_a, identifier_type_b, identifier_value_b
)

select * from final
