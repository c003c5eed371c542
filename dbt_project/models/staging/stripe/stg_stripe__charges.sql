{#- stripe.charges, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'charges', stripe_object_columns({
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
        'receipt_email': dbt.type_string()
    })) }}
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
        {{ stripe_object_renamed_columns() }}
    from source
)

select * from final
