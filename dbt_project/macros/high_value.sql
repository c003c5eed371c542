{#- The is_high_value rule in one place, shared by marts.customer_traits (the rule at as_of) and
    marts.high_value_customers_daily (the rule at the end of every day): its thresholds (dbt vars) and the
    SQL of each criterion's test. -#}
{% macro high_value_rule() -%}
    {{ return({
        'min_orders': var('high_value_min_orders', 5) | int,
        'min_order_total': var('high_value_min_order_total', '100.00'),
        'min_order_total_by_currency': var('high_value_min_order_total_by_currency', {}) or {},
        'min_age': var('high_value_min_age', 25) | int,
        'max_age': var('high_value_max_age', 45) | int,
        'active_weeks': var('high_value_active_weeks', 4) | int,
        'order_window_days': 365,
    }) }}
{%- endmacro %}


{#- SQL boolean: the invoice's own total is over the minimum in its currency, compared in integer minor
    units (exact decimals, no float). -#}
{% macro high_value_is_over_min_total(total_minor='total_minor', currency='currency', currency_decimals='currency_decimals') -%}
    {%- set rule = high_value_rule() -%}
    cast({{ total_minor }} as decimal(38, 4)) > (
        {%- if rule.min_order_total_by_currency %}
        case upper({{ currency }})
        {%- for code, amount in rule.min_order_total_by_currency.items() %}
            when '{{ code | upper }}' then {{ decimal_literal(amount) }}
        {%- endfor %}
            else {{ decimal_literal(rule.min_order_total) }}
        end
        {%- else %}
        {{ decimal_literal(rule.min_order_total) }}
        {%- endif %}) * {{ power_of_ten(currency_decimals) }}
{%- endmacro %}


{#- SQL: the age in completed years on the date `on_date` of someone born on `birth_date` (null if unknown). -#}
{% macro completed_years(birth_date, on_date) -%}
    case when {{ birth_date }} is not null then
        extract(year from {{ on_date }}) - extract(year from {{ birth_date }})
        - case when extract(month from {{ birth_date }}) * 100 + extract(day from {{ birth_date }})
                    > extract(month from {{ on_date }}) * 100 + extract(day from {{ on_date }}) then 1 else 0 end
    end
{%- endmacro %}


{#- SQL boolean: an age in completed years meets the age criterion (an unknown age does not). -#}
{% macro high_value_meets_age(age) -%}
    {%- set rule = high_value_rule() -%}
    coalesce({{ age }} between {{ rule.min_age }} and {{ rule.max_age }}, false)
{%- endmacro %}


{#- SQL: the Monday that starts the Monday-Sunday week holding the date `day`; the activity criterion
    counts the distinct weeks with a page view. -#}
{% macro high_value_week_start(day) -%}
    {#- days since a Monday (2001-01-01), modulo 7 also for dates before it -#}
    {%- set since_monday = '((' ~ dbt.datediff(date_literal(modules.datetime.date(2001, 1, 1)), day, 'day') ~ ') % 7 + 7) % 7' -%}
    cast({{ dbt.dateadd('day', '-(' ~ since_monday ~ ')', day) }} as date)
{%- endmacro %}
