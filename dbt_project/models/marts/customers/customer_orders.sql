{#- Paid Stripe invoices (the orders) with their customer, discount, cost and margin.
    Money is exact: integer minor units of the invoice's own currency (*_minor, as Stripe sends them;
    the number of decimals from ISO 4217 as Stripe applies it) and the same amounts as exact decimals
    in the major unit. A line's unit cost is the finance export row for its SKU with the latest
    effective_date on or before the paid date (UTC); a sale before the SKU's first export uses that
    first export; a cost in another currency than the invoice's is converted at the finance rate of the
    paid date. The invoice's cost is rounded once to the minor unit (half away from zero).
    *_reporting: the total and margin converted into the reporting currency (var reporting_currency,
    default USD) at the finance rate of the paid date, rounded once per invoice; null when no rate
    is known. Grain: one row per invoice_id. -#}
{%- set reporting = var('reporting_currency', 'USD') | upper -%}
{%- set reporting_decimals = iso_decimals_of(reporting) -%}

with invoices as (
    select * from {{ ref('stg_stripe__invoices') }}
),

invoice_lines as (
    select * from {{ ref('stg_stripe__invoice_lines') }}
),

invoice_discount_amounts as (
    select * from {{ ref('stg_stripe__invoice_total_discount_amounts') }}
),

products as (
    select * from {{ ref('stg_stripe__products') }}
),

prices as (
    select * from {{ ref('stg_stripe__prices') }}
),

sku_costs as (
    select * from {{ ref('stg_finance__sku_costs') }}
),

exchange_rates as (
    select * from {{ ref('exchange_rates') }}
),

identifiers as (
    select * from {{ ref('customer_identifiers') }}
    where identifier_type = 'stripe_customer_id'
),

paid_invoices as (
    select
        *,
        coalesce(paid_at, created_at) as paid_or_created_at,
        {{ utc_date('coalesce(paid_at, created_at)') }} as paid_date,
        upper(trim(currency)) as currency_code,
        {{ currency_decimals('currency', stripe_amount_decimals()) }} as currency_decimals
    from invoices
    where invoice_status = 'paid'
      and not coalesce(is_deleted, false)
),

invoice_discounts as (
    select invoice_dlt_id, sum(discount_amount) as discount_amount, count(*) as discounts_applied
    from invoice_discount_amounts
    group by invoice_dlt_id
),

-- One cost per SKU and effective date: a re-exported file for the same date wins by modification time.
sku_costs_deduplicated as (
    select sku, unit_cost, cost_currency, effective_date
    from (
        select
            sku, unit_cost, upper(trim(currency)) as cost_currency, effective_date,
            row_number() over (partition by sku, effective_date
                               order by file_modified_at desc, source_file desc, line_number desc) as rank_in_date
        from sku_costs
        where sku is not null and unit_cost is not null
    ) as ranked
    where rank_in_date = 1
),

sku_cost_periods as (
    select
        sku,
        unit_cost,
        cost_currency,
        -- the first known cost also covers sales made before it was exported
        case when row_number() over (partition by sku order by effective_date) = 1
             then null else effective_date end as valid_from,
        lead(effective_date) over (partition by sku order by effective_date) as valid_to
    from sku_costs_deduplicated
),

-- a unit cost in the invoice's currency: as exported, or converted at the rate of the paid date
lines_costed as (
    select
        paid_invoices.invoice_id,
        invoice_lines.amount,
        invoice_lines.quantity,
        case when sku_cost_periods.cost_currency = paid_invoices.currency_code then sku_cost_periods.unit_cost
             else sku_cost_periods.unit_cost * cost_rates.rate end as unit_cost,
        coalesce(products.sku, prices.sku) as sku
    from invoice_lines
    inner join paid_invoices on paid_invoices.invoice_id = invoice_lines.invoice_id
    left join products on products.product_id = invoice_lines.product_id
    left join prices on prices.price_id = invoice_lines.price_id
    left join sku_cost_periods
        on sku_cost_periods.sku = coalesce(products.sku, prices.sku)
        and (sku_cost_periods.valid_from is null or sku_cost_periods.valid_from <= paid_invoices.paid_date)
        and (sku_cost_periods.valid_to is null or paid_invoices.paid_date < sku_cost_periods.valid_to)
    left join exchange_rates as cost_rates
        on cost_rates.base_currency = sku_cost_periods.cost_currency
        and cost_rates.quote_currency = paid_invoices.currency_code
        and (cost_rates.valid_from is null or cost_rates.valid_from <= paid_invoices.paid_date)
        and (cost_rates.valid_to is null or paid_invoices.paid_date < cost_rates.valid_to)
),

invoice_costs as (
    select
        invoice_id,
        count(*) as line_count,
        sum(coalesce(quantity, 1)) as units,
        sum(case when unit_cost is null then 1 else 0 end) as lines_without_cost,
        sum(cast(coalesce(quantity, 1) as decimal(38, 0)) * cast(unit_cost as decimal(38, 12))) as cost
    from lines_costed
    group by invoice_id
),

amounts as (
    select
        paid_invoices.invoice_id,
        identifiers.customer_id,
        paid_invoices.stripe_customer_id,
        paid_invoices.invoice_number,
        paid_invoices.paid_or_created_at as paid_at,
        paid_invoices.paid_date,
        paid_invoices.currency_code as currency,
        paid_invoices.currency_decimals,
        paid_invoices.subtotal as subtotal_minor,
        coalesce(invoice_discounts.discount_amount, 0) as discount_minor,
        paid_invoices.total as total_minor,
        coalesce(invoice_discounts.discounts_applied, 0) > 0 as has_discount,
        coalesce(invoice_costs.line_count, 0) as line_count,
        coalesce(invoice_costs.units, 0) as units,
        -- cost and margin are unknown when a line's SKU has no unit cost (or no rate into the invoice's currency)
        case when coalesce(invoice_costs.lines_without_cost, 0) = 0 and invoice_costs.line_count > 0
                  and invoice_costs.cost is not null
             then {{ major_to_minor('invoice_costs.cost', 'paid_invoices.currency_decimals') }} end as cost_minor,
        case when paid_invoices.currency_code = '{{ reporting }}' then cast(1 as decimal(28, 12))
             else reporting_rates.rate end as reporting_rate
    from paid_invoices
    left join identifiers
        on identifiers.identifier_value = {{ normalize_identifier('stripe_customer_id', 'paid_invoices.stripe_customer_id') }}
    left join invoice_discounts on invoice_discounts.invoice_dlt_id = paid_invoices.dlt_id
    left join invoice_costs on invoice_costs.invoice_id = paid_invoices.invoice_id
    left join exchange_rates as reporting_rates
        on reporting_rates.base_currency = paid_invoices.currency_code
        and reporting_rates.quote_currency = '{{ reporting }}'
        and (reporting_rates.valid_from is null or reporting_rates.valid_from <= paid_invoices.paid_date)
        and (reporting_rates.valid_to is null or paid_invoices.paid_date < reporting_rates.valid_to)
),

final as (
    select
        invoice_id,
        customer_id,
        stripe_customer_id,
        invoice_number,
        paid_at,
        paid_date,
        currency,
        currency_decimals,
        subtotal_minor,
        discount_minor,
        total_minor,
        cost_minor,
        total_minor - cost_minor as margin_minor,
        {{ minor_to_major('subtotal_minor', 'currency_decimals') }} as subtotal,
        {{ minor_to_major('discount_minor', 'currency_decimals') }} as discount,
        {{ minor_to_major('total_minor', 'currency_decimals') }} as total,
        {{ minor_to_major('cost_minor', 'currency_decimals') }} as cost,
        {{ minor_to_major('total_minor - cost_minor', 'currency_decimals') }} as margin,
        has_discount,
        line_count,
        units,
        '{{ reporting }}' as reporting_currency,
        reporting_rate,
        {{ convert_minor('total_minor', 'currency_decimals', 'reporting_rate', reporting_decimals) }} as total_reporting_minor,
        {{ convert_minor('total_minor - cost_minor', 'currency_decimals', 'reporting_rate', reporting_decimals) }} as margin_reporting_minor,
        {{ convert_minor('discount_minor', 'currency_decimals', 'reporting_rate', reporting_decimals) }} as discount_reporting_minor,
        {{ convert_minor('cost_minor', 'currency_decimals', 'reporting_rate', reporting_decimals) }} as cost_reporting_minor
    from amounts
)

select * from final
