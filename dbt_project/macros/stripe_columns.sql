{#- The columns of every Stripe object table (customers, products, prices, coupons, invoices, charges):
    Stripe's `created` and `livemode`, and the `deleted` flag and `_snapshot_at` the dlt source adds,
    plus dlt's bookkeeping; `extra` adds the object's own columns. For `source_or_empty`. -#}
{% macro stripe_object_columns(extra=none) -%}
    {%- set columns = {
        'created': dbt.type_bigint(), 'livemode': dbt.type_boolean(), 'deleted': dbt.type_boolean(),
        '_snapshot_at': dbt.type_bigint(), '_dlt_load_id': dbt.type_string(), '_dlt_id': dbt.type_string(),
    } -%}
    {%- do columns.update(extra or {}) -%}
    {{ return(columns) }}
{%- endmacro %}

{#- Those columns, renamed and cast for staging. -#}
{% macro stripe_object_renamed_columns() -%}
        {{ epoch_to_timestamptz('created') }} as created_at,
        livemode as is_livemode,
        deleted as is_deleted,
        {{ epoch_to_timestamptz('_snapshot_at') }} as snapshot_at,
        {{ dlt_loaded_at('_dlt_load_id') }} as loaded_at,
        _dlt_id as dlt_id
{%- endmacro %}
