{#- stripe.coupons, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'coupons', stripe_object_columns({
        'id': dbt.type_string(),
        'name': dbt.type_string(),
        'percent_off': dbt.type_float(),
        'amount_off': dbt.type_bigint(),
        'currency': dbt.type_string(),
        'duration': dbt.type_string(),
        'duration_in_months': dbt.type_bigint(),
        'times_redeemed': dbt.type_bigint(),
        'valid': dbt.type_boolean()
    })) }}
),

final as (
    select
        id as coupon_id,
        name as coupon_name,
        percent_off,
        amount_off,
        currency,
        duration,
        duration_in_months,
        times_redeemed,
        valid as is_valid,
        {{ stripe_object_renamed_columns() }}
    from source
)

select * from final
