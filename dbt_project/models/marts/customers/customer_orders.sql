{#- Paid Stripe invoices (the orders) with their customer, discount, cost and margin.
    Amounts are in the invoice currency's major unit (Stripe's minor units / 100). A line's unit cost is
    the finance export row for its SKU with the latest effective_date on or before the paid date (UTC);
    a sale before the SKU's first export uses that first export. Grain: one row per invoice_id. -#}

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

identifiers as (
    select * from {{ ref('customer_identifiers') }}
    where identifier_type = 'stripe_customer_id'
),

paid_invoices as (
    select
        *,
        {{ utc_date('coalesce(paid_at, created_at)') }} as paid_date
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
    select sku, unit_cost, effective_date
    from (
        select
            sku, unit_cost, effective_date,
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
        -- the first known cost also covers sales made before it was exported
        case when row_number() over (partition by sku order by effective_date) = 1
             then null else effective_date end as valid_from,
        lead(effective_date) over (partition by sku order by effective_date) as valid_to
    from sku_costs_deduplicated
),

lines_costed as (
    select
        paid_invoices.invoice_id,
        invoice_lines.amount,
        invoice_lines.quantity,
        sku_cost_periods.unit_cost,
        coalesce(products.sku, prices.sku) as sku
    from invoice_lines
    inner join paid_invoices on paid_invoices.invoice_id = invoice_lines.invoice_id
    left join products on products.product_id = invoice_lines.product_id
    left join prices on prices.price_id = invoice_lines.price_id
    left join sku_cost_periods
        on sku_cost_periods.sku = coalesce(products.sku, prices.sku)
        and (sku_cost_periods.valid_from is null or sku_cost_periods.valid_from <= paid_invoices.paid_date)
        and (sku_cost_periods.valid_to is null or paid_invoices.paid_date < sku_cost_periods.valid_to)
),

invoice_costs as (
    select
        invoice_id,
        count(*) as line_count,
        sum(coalesce(quantity, 1)) as units,
        sum(case when unit_cost is null then 1 else 0 end) as lines_without_cost,
        sum(coalesce(quantity, 1) * unit_cost) as cost
    from lines_costed
    group by invoice_id
),

final as (
    select
        paid_invoices.invoice_id,
        identifiers.customer_id,
        paid_invoices.stripe_customer_id,
        paid_invoices.invoice_number,
        paid_invoices.paid_at,
        paid_invoices.paid_date,
        paid_invoices.currency,
        cast(paid_invoices.subtotal as {{ dbt.type_numeric() }}) / 100 as subtotal,
        cast(coalesce(invoice_discounts.discount_amount, 0) as {{ dbt.type_numeric() }}) / 100 as discount,
        cast(paid_invoices.total as {{ dbt.type_numeric() }}) / 100 as total,
        coalesce(invoice_discounts.discounts_applied, 0) > 0 as has_discount,
        coalesce(invoice_costs.line_count, 0) as line_count,
        coalesce(invoice_costs.units, 0) as units,
        -- cost and margin are unknown when a line's SKU has no unit cost
        case when coalesce(invoice_costs.lines_without_cost, 0) = 0 and invoice_costs.line_count > 0
             then invoice_costs.cost end as cost,
        case when coalesce(invoice_costs.lines_without_cost, 0) = 0 and invoice_costs.line_count > 0
             then cast(paid_invoices.total as {{ dbt.type_numeric() }}) / 100 - invoice_costs.cost end as margin
    from paid_invoices
    left join identifiers
        on identifiers.identifier_value = {{ normalize_identifier('stripe_customer_id', 'paid_invoices.stripe_customer_id') }}
    left join invoice_discounts on invoice_discounts.invoice_dlt_id = paid_invoices.dlt_id
    left join invoice_costs on invoice_costs.invoice_id = paid_invoices.invoice_id
)

select * from final
