{#- Identifier values that never join anything, each with the reason: placeholders that stand for
    "no value" (empty, 'null', 'undefined', 'anonymous', all-zero ids, an email without '@'), and
    values linked to more distinct identifiers of one other type than the cap of that pair of types
    (`identity_max_links_per_value`), i.e. shared by implausibly many people. -#}
{%- set caps = identity_link_caps() -%}

with links as (
    select * from {{ ref('int_identity_links_collected') }}
),

identifiers as (
    select identifier_type_a as identifier_type, identifier_value_a as identifier_value
    from links
    union
    select identifier_type_b, identifier_value_b
    from links
    where identifier_type_b is not null
),

placeholders as (
    select
        identifier_type,
        identifier_value,
        {{ identity_placeholder_reason('identifier_type', 'identifier_value') }} as block_reason
    from identifiers
),

placeholders_blocked as (
    select * from placeholders where block_reason is not null
),

-- every link in both directions, placeholders left out (they must not inflate a real value's count)
directed_links as (
    select identifier_type_a as identifier_type, identifier_value_a as identifier_value,
           identifier_type_b as linked_type, identifier_value_b as linked_value
    from links
    where identifier_type_b is not null
    union
    select identifier_type_b, identifier_value_b, identifier_type_a, identifier_value_a
    from links
    where identifier_type_b is not null
),

usable_links as (
    select directed_links.*
    from directed_links
    left join placeholders_blocked as blocked_self
        on blocked_self.identifier_type = directed_links.identifier_type
        and blocked_self.identifier_value = directed_links.identifier_value
    left join placeholders_blocked as blocked_other
        on blocked_other.identifier_type = directed_links.linked_type
        and blocked_other.identifier_value = directed_links.linked_value
    where blocked_self.identifier_value is null
      and blocked_other.identifier_value is null
      and not (directed_links.identifier_type = directed_links.linked_type
               and directed_links.identifier_value = directed_links.linked_value)
),

caps as (
    {%- for identifier_type, linked_type, cap in caps %}
    select '{{ identifier_type }}' as identifier_type, '{{ linked_type }}' as linked_type, {{ cap }} as max_links_per_value
    {{ "union all" if not loop.last }}
    {%- endfor %}
),

fan_out as (
    select identifier_type, identifier_value, linked_type, count(distinct linked_value) as linked_values
    from usable_links
    group by identifier_type, identifier_value, linked_type
),

over_cap as (
    select
        fan_out.identifier_type,
        fan_out.identifier_value,
        fan_out.linked_type,
        fan_out.linked_values,
        caps.max_links_per_value,
        row_number() over (
            partition by fan_out.identifier_type, fan_out.identifier_value
            order by fan_out.linked_values - caps.max_links_per_value desc, fan_out.linked_type
        ) as rank_in_value
    from fan_out
    inner join caps on caps.identifier_type = fan_out.identifier_type and caps.linked_type = fan_out.linked_type
    where fan_out.linked_values > caps.max_links_per_value
),

final as (
    select
        identifier_type,
        identifier_value,
        block_reason,
        cast(null as {{ dbt.type_string() }}) as linked_type,
        cast(null as {{ dbt.type_bigint() }}) as linked_values,
        cast(null as {{ dbt.type_bigint() }}) as max_links_per_value
    from placeholders_blocked
    union all
    select
        identifier_type,
        identifier_value,
        {{ dbt.concat([
            "'linked to '", "cast(linked_values as " ~ dbt.type_string() ~ ")",
            "' distinct '", "linked_type", "' values, more than the cap of '",
            "cast(max_links_per_value as " ~ dbt.type_string() ~ ")"]) }},
        linked_type,
        linked_values,
        max_links_per_value
    from over_cap
    where rank_in_value = 1
)

select * from final
