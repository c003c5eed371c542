{#- Whitepaper question: which pages do qualified leads with more than 5 purchases in the last year view
    most? Qualified = HubSpot lead_qualified; purchases = paid Stripe invoices in the 365 days before
    as_of (customer_traits.orders_last_365d); page views in the same year. Compile with `dbt compile`
    and run target/compiled/.../top_pages_of_qualified_repeat_buyers.sql on the warehouse. -#}
{%- set min_purchases = var('top_pages_min_purchases', 5) | int -%}

with traits as (
    select * from {{ ref('customer_traits') }}
),

qualified_repeat_buyers as (
    select customer_id, as_of_date
    from traits
    where lead_qualified and orders_last_365d > {{ min_purchases }}
),

page_views as (
    select journey.customer_id, journey.page_path
    from {{ ref('customer_journey') }} as journey
    inner join qualified_repeat_buyers on qualified_repeat_buyers.customer_id = journey.customer_id
    where journey.touchpoint_type = 'page_view'
      and journey.occurred_at < cast(qualified_repeat_buyers.as_of_date as {{ type_timestamptz() }})
      and journey.occurred_at >= cast({{ dbt.dateadd('day', -365, 'qualified_repeat_buyers.as_of_date') }} as {{ type_timestamptz() }})
)

select
    page_path,
    count(*) as page_views,
    count(distinct customer_id) as customers,
    (select count(*) from qualified_repeat_buyers) as qualified_repeat_buyers
from page_views
group by page_path
order by page_views desc, customers desc, page_path
limit 20
