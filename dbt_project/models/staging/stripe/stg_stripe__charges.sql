{#- stripe.charges, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'charges', {
        'id': dbt.type_string(),
        'customer': dbt.type_string(),
        'invoice': dbt.type_string(),
        'amount': dbt.type_bigint(),
        'amount_captured': dbt.type_bigint(),
        'amount_refunded': dbt.type_bigint(),
        'currency': dbt.type_string(),
        'status': dbt.type_string(),
        'paid': dbt.type_boolean(),
        'refunded': dbt.type_boolean(),
        'receipt_email': dbt.type_string(),
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
        id as charge_id,
        customer as stripe_customer_id,
        invoice as invoice_id,
        amount,
        amount_captured,
        amount_refunded,
        currency,
        status as charge_status,
        paid as is_paid,
        refunded as is_refunded,
        receipt_email,
        {{ epoch_to_timestamptz('created') }} as created_at,
        livemode as is_livemode,
        deleted as is_deleted,
        {{ epoch_to_timestamptz('_snapshot_at') }} as snapshot_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
    from source
)

select * from final
