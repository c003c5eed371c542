{#- Money: amounts are integers in a currency's minor unit; the number of decimals of each currency
    comes from ISO 4217 (USD 2, JPY 0, KWD 3, CLF 4). Codes are upper-case; an unknown code has no
    decimals (NULL), so its amounts stay unconverted and a data test warns. -#}

{#- ISO 4217 currencies (list of 2025) whose minor unit is not 2 decimals; every other code below has 2. -#}
{% macro iso_4217_decimals() -%}
    {%- set not_two = {
        'BIF': 0, 'CLP': 0, 'DJF': 0, 'GNF': 0, 'ISK': 0, 'JPY': 0, 'KMF': 0, 'KRW': 0, 'PYG': 0, 'RWF': 0,
        'UGX': 0, 'UYI': 0, 'VND': 0, 'VUV': 0, 'XAF': 0, 'XOF': 0, 'XPF': 0,
        'BHD': 3, 'IQD': 3, 'JOD': 3, 'KWD': 3, 'LYD': 3, 'OMR': 3, 'TND': 3,
        'CLF': 4, 'UYW': 4,
    } -%}
    {%- set two = 'AED AFN ALL AMD AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR ZMW ZWG'.split() -%}
    {%- set table = {} -%}
    {%- for code in two %}{% do table.update({code: 2}) %}{% endfor -%}
    {%- do table.update(not_two) -%}
    {{ return(table) }}
{%- endmacro %}


{#- The decimals of Stripe's integer amounts: ISO 4217's, except where Stripe documents otherwise
    (ISK stays two-decimal in Stripe's API, 100 = 1 krona; Stripe treats MGA as zero-decimal). -#}
{% macro stripe_amount_decimals() -%}
    {%- set table = iso_4217_decimals() -%}
    {%- do table.update({'ISK': 2, 'MGA': 0}) -%}
    {{ return(table) }}
{%- endmacro %}


{#- SQL: the decimals of the currency code in `column` (any case) by `table` ({code: decimals}); NULL when unknown. -#}
{% macro currency_decimals(column, table=none) -%}
    {%- set table = table if table is not none else iso_4217_decimals() -%}
    case
    {%- for decimals in table.values() | unique | sort %}
        {%- set codes = table | dictsort | selectattr(1, 'equalto', decimals) | map(attribute=0) | list %}
        when upper(trim({{ column }})) in ('{{ codes | join("', '") }}') then {{ decimals }}
    {%- endfor %}
    end
{%- endmacro %}


{#- Python: the ISO 4217 decimals of `code`; a compile error naming the code when it is unknown. -#}
{% macro iso_decimals_of(code) -%}
    {%- set decimals = iso_4217_decimals().get(code | upper) -%}
    {%- if decimals is none -%}
        {{ exceptions.raise_compiler_error("'" ~ code ~ "' is not an ISO 4217 currency code: set the dbt var reporting_currency to one, e.g. USD.") }}
    {%- endif -%}
    {{ return(decimals) }}
{%- endmacro %}


{#- SQL: the exact decimal 10^exponent for an integer exponent expression between -4 and 4. -#}
{% macro power_of_ten(exponent) -%}
    {%- if exponent is number -%}
    cast('{{ "1" if exponent == 0 else ("1" ~ "0" * exponent if exponent > 0 else "0." ~ "0" * (-exponent - 1) ~ "1") }}' as decimal(38, 4))
    {%- else -%}
    case {{ exponent }}
    {%- for k in range(-4, 5) %}
        when {{ k }} then cast('{{ "1" if k == 0 else ("1" ~ "0" * k if k > 0 else "0." ~ "0" * (-k - 1) ~ "1") }}' as decimal(38, 4))
    {%- endfor %}
    end
    {%- endif -%}
{%- endmacro %}


{#- SQL: an integer amount of minor units as an exact decimal in the major unit (the currency's scale
    when `decimals` is a number, else 4 decimals of scale, enough for every ISO 4217 currency). -#}
{% macro minor_to_major(amount_minor, decimals) -%}
    {%- if decimals is number -%}
    {#- one currency known when compiling: its own scale (USD 500.05, not 500.0500) -#}
    cast(cast({{ amount_minor }} as decimal(38, 0)) * {{ power_of_ten(-decimals) }} as decimal(38, {{ decimals }}))
    {%- else -%}
    cast({{ amount_minor }} as decimal(38, 0)) * {{ power_of_ten('-(' ~ decimals ~ ')') }}
    {%- endif -%}
{%- endmacro %}


{#- SQL: an exact decimal amount in a major unit as integer minor units, rounded half away from zero. -#}
{% macro major_to_minor(amount_major, decimals) -%}
    cast(round(cast({{ amount_major }} as decimal(38, 10)) * {{ power_of_ten(decimals) }}, 0) as {{ dbt.type_bigint() }})
{%- endmacro %}


{#- SQL: integer minor units of one currency converted at `rate` (units of the target per unit of the
    source) into the target's integer minor units, rounded half away from zero, once per amount. -#}
{% macro convert_minor(amount_minor, from_decimals, rate, to_decimals) -%}
    cast(round(cast({{ amount_minor }} as decimal(38, 0)) * cast({{ rate }} as decimal(38, 12))
               * {{ power_of_ten('(' ~ to_decimals ~ ') - (' ~ from_decimals ~ ')') }}, 0) as {{ dbt.type_bigint() }})
{%- endmacro %}


{#- SQL: a decimal literal written exactly (never through a float), e.g. decimal_literal('100.00'). -#}
{% macro decimal_literal(value) -%}
    {%- set text = value | string | trim -%}
    {%- if not modules.re.match('^-?[0-9]+(\\.[0-9]+)?$', text) -%}
        {{ exceptions.raise_compiler_error("'" ~ text ~ "' is not a decimal amount: write it like 100.00.") }}
    {%- endif -%}
    cast('{{ text }}' as decimal(38, 4))
{%- endmacro %}

