{#- stripe.customers, renamed and cast. -#}
with source as (
    {{ source_or_empty('stripe', 'customers', stripe_object_columns({
        'id': dbt.type_string(),
        'email': dbt.type_string(),
        'name': dbt.type_string(),
        'currency': dbt.type_string(),
        'balance': dbt.type_bigint(),
        'delinquent': dbt.type_boolean()
    })) }}
),

final as (
    select
        id as stripe_customer_id,
        email,
        name as customer_name,
        currency,
        balance,
        delinquent as is_delinquent,
        {{ stripe_object_renamed_columns() }}
    from source
)

select * from final
