{#- Amplitude user properties (Identify API `$set`), keyed by the app user id. Amplitude rejects a
    user_id shorter than 5 characters unless the request lowers `options.min_id_length`: ids shorter
    than the dbt var `amplitude_min_id_length` (default 5) are left out; set the var and the sync's
    min_id_length together to include them. Grain: one row per user_id. -#}

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
        traits.lifetime_value,
        traits.margin,
        traits.coupon_usage_rate,
        traits.orders_last_365d,
        traits.last_seen_date
    from identifiers
    inner join traits on traits.customer_id = identifiers.customer_id
    where {{ dbt.length('identifiers.identifier_value') }} >= {{ var('amplitude_min_id_length', 5) | int }}
)

select * from final
