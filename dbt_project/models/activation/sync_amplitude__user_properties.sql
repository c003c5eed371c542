{#- Amplitude user properties (Identify API `$set`, `$unset` for cleared values), keyed by the app user
    id: every user id of a customer carries the customer's traits, since each is its own Amplitude user.
    Amplitude rejects a user_id shorter than 5 characters unless the request lowers `min_id_length`: ids
    shorter than the dbt var `amplitude_min_id_length` (default 5) are left out; set the var and the sync's
    option min_id_length together to include them. Money is rounded to cents and rates to 4 places, as
    the sync sends them. Grain: one row per user_id. -#}

with identifiers as (
    select * from {{ ref('customer_identifiers') }}
    where identifier_type = 'user_id'
),

traits as (
    select * from {{ ref('customer_traits') }}
),

final as (
    select
        identifiers.identifier_value as user_id,
        identifiers.customer_id,
        traits.is_high_value,
        traits.lead_qualified,
        traits.customer_type,
        cast(round(traits.lifetime_value, 2) as decimal(18, 2)) as lifetime_value,
        cast(round(traits.margin, 2) as decimal(18, 2)) as margin,
        cast(round(traits.coupon_usage_rate, 4) as decimal(18, 4)) as coupon_usage_rate,
        traits.orders_last_365d,
        traits.last_seen_date
    from identifiers
    inner join traits on traits.customer_id = identifiers.customer_id
    where {{ dbt.length('identifiers.identifier_value') }} >= {{ var('amplitude_min_id_length', 5) | int }}
)

select * from final
