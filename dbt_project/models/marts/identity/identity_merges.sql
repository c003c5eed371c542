{#- The merge history of customer ids, kept across builds (append-only; `--full-refresh` does not reset
    it). A merge: old_customer_id was joined to an older customer and lives on as customer_id, because
    of the link named here (first seen at changed_at). A split: some identifiers of old_customer_id
    left it (a link disappeared or an identifier was blocked) and are now customer_id; changed_at is
    the latest moment the build's identity data reaches. Grain: one row per change (`change_id`). -#}
{{ config(materialized='incremental', unique_key='change_id', incremental_strategy='delete+insert',
          on_schema_change='append_new_columns', full_refresh=false) }}

with components as (
    select * from {{ ref('int_identity_components') }}
),

links as (
    select * from {{ ref('int_identity_links_accepted') }}
),

changes as (
    select
        change_type,
        previous_customer_id as old_customer_id,
        customer_id,
        changed_at,
        change_link_id,
        change_reason,
        count(*) as identifiers_moved
    from components
    where change_type is not null
    group by change_type, previous_customer_id, customer_id, changed_at, change_link_id, change_reason
),

final as (
    select
        {{ dbt.hash(dbt.concat([
            "changes.change_type", "'|'", "changes.old_customer_id", "'|'", "changes.customer_id", "'|'",
            "coalesce(cast(changes.changed_at as " ~ dbt.type_string() ~ "), '')"])) }} as change_id,
        changes.change_type,
        changes.old_customer_id,
        changes.customer_id,
        changes.changed_at,
        changes.identifiers_moved,
        changes.change_link_id as link_id,
        links.source_system,
        links.identifier_type_a,
        links.identifier_value_a,
        links.identifier_type_b,
        links.identifier_value_b,
        changes.change_reason
    from changes
    left join links on links.link_id = changes.change_link_id
)

select * from final
