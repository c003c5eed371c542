{#- The Facebook custom audience of high-value customers: every email of every high-value customer,
    normalised as Facebook requires (trimmed, lower-cased) and hashed with SHA-256 (hex). Only hashes
    leave the warehouse. Grain: one row per email_sha256. -#}
{%- set sha256 = {
    'duckdb': "sha256({0})",
    'postgres': "encode(sha256(convert_to({0}, 'UTF8')), 'hex')",
    'snowflake': "sha2({0}, 256)",
    'bigquery': "to_hex(sha256({0}))",
}.get(target.type) -%}
{%- if sha256 is none -%}
    {{ exceptions.raise_compiler_error("sync_facebook__high_value_audience has no SHA-256 expression for the " ~ target.type ~ " adapter yet; add one to the dict at the top of the model.") }}
{%- endif -%}

with identifiers as (
    select * from {{ ref('customer_identifiers') }}
    where identifier_type = 'email'
),

traits as (
    select * from {{ ref('customer_traits') }}
    where is_high_value
),

final as (
    select
        {{ sha256.format(normalize_identifier('email', 'identifiers.identifier_value')) }} as email_sha256,
        identifiers.customer_id
    from identifiers
    inner join traits on traits.customer_id = identifiers.customer_id
)

select * from final
