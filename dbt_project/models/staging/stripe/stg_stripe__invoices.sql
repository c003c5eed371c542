{#- stripe.invoices, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'invoices', stripe_object_columns({
        'id': dbt.type_string(),
        'customer': dbt.type_string(),
        'customer_email': dbt.type_string(),
        'customer_name': dbt.type_string(),
        'number': dbt.type_string(),
        'status': dbt.type_string(),
        'currency': dbt.type_string(),
        'subtotal': dbt.type_bigint(),
        'subtotal_excluding_tax': dbt.type_bigint(),
        'total': dbt.type_bigint(),
        'total_excluding_tax': dbt.type_bigint(),
        'amount_due': dbt.type_bigint(),
        'amount_paid': dbt.type_bigint(),
        'amount_remaining': dbt.type_bigint(),
        'amount_shipping': dbt.type_bigint(),
        'billing_reason': dbt.type_string(),
        'collection_method': dbt.type_string(),
        'subscription': dbt.type_string(),
        'status_transitions__finalized_at': dbt.type_bigint(),
        'status_transitions__paid_at': dbt.type_bigint(),
        'status_transitions__voided_at': dbt.type_bigint(),
        'effective_at': dbt.type_bigint(),
        'period_start': dbt.type_bigint(),
        'period_end': dbt.type_bigint()
    })) }}
),

final as (
    select
        id as invoice_id,
        customer as stripe_customer_id,
        customer_email,
        customer_name,
        number as invoice_number,
        status as invoice_status,
        currency,
        subtotal,
        subtotal_excluding_tax,
        total,
        total_excluding_tax,
        amount_due,
        amount_paid,
        amount_remaining,
        amount_shipping,
        billing_reason,
        collection_method,
        subscription as subscription_id,
        {{ epoch_to_timestamptz('status_transitions__finalized_at') }} as finalized_at,
        {{ epoch_to_timestamptz('status_transitions__paid_at') }} as paid_at,
        {{ epoch_to_timestamptz('status_transitions__voided_at') }} as voided_at,
        {{ epoch_to_timestamptz('effective_at') }} as effective_at,
        {{ epoch_to_timestamptz('period_start') }} as period_start_at,
        {{ epoch_to_timestamptz('period_end') }} as period_end_at,
        {{ stripe_object_renamed_columns() }}
    from source
)

select * from final
