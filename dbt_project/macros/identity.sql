{#- Identity stitching settings. Override any of them with dbt vars (dbt_project.yml `vars:` or
    `--vars`); a partial `identity_max_links_per_value` dict keeps the defaults of the other types. -#}

{#- The identifier types a customer is stitched from, in the order they are documented. -#}
{% macro identity_types() -%}
    {{ return(['anonymous_id', 'user_id', 'email', 'hubspot_contact_id', 'stripe_customer_id',
               'zendesk_user_id', 'customerio_id']) }}
{%- endmacro %}


{#- {identifier type: {linked type: cap}}: a value linked to more distinct values of one other type than
    the cap of that pair is shared by too many people (a family inbox, a kiosk browser, a placeholder)
    and is blocked. '*' is the cap of every pair not named. One email with many Stripe customers (guest
    checkout creates one per order), many HubSpot contacts (duplicates) or many devices is one person,
    so those pairs have high caps; one device, Stripe customer or contact with many emails or users is not.
    Override with the var `identity_max_links_per_value`: {email: {stripe_customer_id: 50}} changes one
    pair, {anonymous_id: 20} sets every pair of a type. -#}
{% macro identity_max_links_per_value() -%}
    {%- set caps = {
        'anonymous_id': {'*': 10},
        'user_id': {'*': 20, 'anonymous_id': 1000},
        'email': {'*': 5, 'anonymous_id': 100, 'hubspot_contact_id': 100, 'stripe_customer_id': 1000,
                  'zendesk_user_id': 20},
        'hubspot_contact_id': {'*': 5},
        'stripe_customer_id': {'*': 5},
        'zendesk_user_id': {'*': 5},
        'customerio_id': {'*': 5},
    } -%}
    {%- for identifier_type, override in var('identity_max_links_per_value', {}).items() -%}
        {%- if override is mapping -%}
            {%- do caps.setdefault(identifier_type, {'*': 5}).update(override) -%}
        {%- else -%}
            {%- do caps.update({identifier_type: {'*': override}}) -%}
        {%- endif -%}
    {%- endfor -%}
    {{ return(caps) }}
{%- endmacro %}


{#- [(identifier type, linked type, cap)] for every pair of identifier types. -#}
{% macro identity_link_caps() -%}
    {%- set caps = identity_max_links_per_value() -%}
    {%- set pairs = [] -%}
    {%- for identifier_type in identity_types() -%}
        {%- set of_type = caps.get(identifier_type, {'*': 5}) -%}
        {%- for linked_type in identity_types() -%}
            {%- do pairs.append((identifier_type, linked_type, of_type.get(linked_type, of_type.get('*', 5)) | int)) -%}
        {%- endfor -%}
    {%- endfor -%}
    {{ return(pairs) }}
{%- endmacro %}


{#- Values that stand for "no value" (compared lower-cased, after trimming); they never join anything. -#}
{% macro identity_blocked_values() -%}
    {{ return(var('identity_blocked_values', ['null', 'undefined', 'anonymous', 'none', 'nil', 'nan', 'unknown',
                                                'n/a', '[object object]', 'anonymous_id', 'user_id', 'email'])) }}
{%- endmacro %}


{#- `context.library.name` of the tracks the loader derives from SaaS webhooks: their user ids are the
    SaaS tool's ids (e.g. Customer.io's), not the app's. -#}
{% macro identity_webhook_library() -%}
    {{ return(var('identity_webhook_library', 'growth-stack-webhooks')) }}
{%- endmacro %}


{#- Event sources (webhook paths) whose tracks carry the Customer.io identifier as user_id. -#}
{% macro identity_customerio_sources() -%}
    {{ return(var('identity_customerio_sources', ['customerio'])) }}
{%- endmacro %}


{#- The comparable form of an identifier: emails trimmed and lower-cased, other ids trimmed. -#}
{% macro normalize_identifier(identifier_type, value) -%}
    {%- if identifier_type == 'email' -%}
        lower({{ trim_whitespace(value) }})
    {%- else -%}
        {{ trim_whitespace('cast(' ~ value ~ ' as ' ~ dbt.type_string() ~ ')') }}
    {%- endif -%}
{%- endmacro %}


{#- `value` without leading and trailing spaces, tabs and line breaks. -#}
{% macro trim_whitespace(value) -%}
    {{ return(adapter.dispatch('trim_whitespace')(value)) }}
{%- endmacro %}

{% macro default__trim_whitespace(value) -%}
    trim({{ value }}, ' ' || chr(9) || chr(10) || chr(13))
{%- endmacro %}

{% macro postgres__trim_whitespace(value) -%}
    btrim({{ value }}, ' ' || chr(9) || chr(10) || chr(13))
{%- endmacro %}


{#- The graph node key of an identifier: `<type>:<value>`. -#}
{% macro identity_node_key(identifier_type, identifier_value) -%}
    {{ dbt.concat([identifier_type, "':'", identifier_value]) }}
{%- endmacro %}


{#- Why a normalised identifier value stands for "no value" ('empty value', 'placeholder value',
    'all-zero id', 'not an email address'), or NULL for a real value. Arguments are SQL expressions. -#}
{% macro identity_placeholder_reason(identifier_type, identifier_value) -%}
    case
        when {{ identifier_value }} = '' then 'empty value'
        when lower({{ identifier_value }}) in {{ sql_string_list(identity_blocked_values()) }} then 'placeholder value'
        when replace(replace({{ identifier_value }}, '0', ''), '-', '') = '' then 'all-zero id'
        when {{ identifier_type }} = 'email' and {{ identifier_value }} not like '%@%' then 'not an email address'
    end
{%- endmacro %}


{#- A SQL list literal of strings: ('a', 'b'). -#}
{% macro sql_string_list(values) -%}
    ({%- for v in values -%}'{{ v | replace("'", "''") }}'{{ ", " if not loop.last }}{%- endfor -%})
{%- endmacro %}
