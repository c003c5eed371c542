{#- Warns with the orders whose currency has no finance exchange rate into the reporting currency on
    their paid date: their customers' lifetime_value and margin are null until a rate file is dropped. -#}
{{ config(severity='warn') }}

select invoice_id, customer_id, currency, paid_date, reporting_currency
from {{ ref('customer_orders') }}
where total_reporting_minor is null
