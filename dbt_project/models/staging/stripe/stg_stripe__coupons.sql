{#- stripe.coupons, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'coupons', {
        'id': dbt.type_string(),
        'name': dbt.type_string(),
        'percent_off': dbt.type_float(),
        'amount_off': dbt.type_bigint(),
        'currency': dbt.type_string(),
        'duration': dbt.type_string(),
        'duration_in_months': dbt.type_bigint(),
        'times_redeemed': dbt.type_bigint(),
        'valid': dbt.type_boolean(),
        'created': dbt.type_bigint(),
        'livemode': dbt.type_boolean(),
        'deleted': dbt.type_boolean(),
        '_snapshot_at': dbt.type_bigint(),
        '_dlt_load_id': dbt.type_string(),
        '_dlt_id': dbt.type_string()
    }) }}
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
        {{ epoch_to_timestamptz('created') }} as created_at,
        livemode as is_livemode,
        deleted as is_deleted,
        {{ epoch_to_timestamptz('_snapshot_at') }} as snapshot_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
