{#- Whitepaper question: do some demographic segments use coupons at a higher rate? Segments of
    marts.coupon_usage_by_segment with enough orders to judge (var `coupon_min_orders`, default 30),
    highest usage first; `significantly_higher` when the two-proportion z score against all other
    orders exceeds 1.96 (95%). -#}
{%- set min_orders = var('coupon_min_orders', 30) | int -%}

select
    age_band,
    customer_type,
    orders,
    coupon_usage_rate,
    others_coupon_usage_rate,
    rate_ratio_to_others,
    z_score_vs_others,
    coalesce(z_score_vs_others > 1.96, false) as significantly_higher
from {{ ref('coupon_usage_by_segment') }}
where orders >= {{ min_orders }}
order by coupon_usage_rate desc, orders desc
