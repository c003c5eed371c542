{#- stripe.customers, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'customers', {
        'id': dbt.type_string(),
        'email': dbt.type_string(),
        'name': dbt.type_string(),
        'currency': dbt.type_string(),
        'balance': dbt.type_bigint(),
        'delinquent': dbt.type_boolean(),
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
        id as stripe_customer_id,
        email,
        name as customer_name,
        currency,
        balance,
        delinquent as is_delinquent,
        {{ epoch_to_timestamptz('created') }} as created_at,
        livemode as is_livemode,
        deleted as is_deleted,
        {{ epoch_to_timestamptz('_snapshot_at') }} as snapshot_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
