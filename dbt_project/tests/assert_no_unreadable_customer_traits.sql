{#- Warns with the count of trait values a source holds but that cannot be read (an unparseable
    date_of_birth, ...): each is a customer whose traits are incomplete. See customer_trait_discards. -#}
{{ config(severity='warn') }}

select * from {{ ref('customer_trait_discards') }}
