-- customer_summary: one row per customer with at least one purchase before as_of.
-- frequency, t_x_days and tenure_days are the BG/NBD inputs (repeat purchase days,
-- first-to-last and first-to-as_of in days); typical_gap_days is the customer's own rhythm.
with days as (
    select * from purchase_days
),

orders as (
    select * from purchases_clean
),

gap_stats as (
    select
        customer_id,
        median(gap_days) as typical_gap_days,
        percentile_cont(0.75) within group (order by gap_days)
            - percentile_cont(0.25) within group (order by gap_days) as gap_spread_days
    from days
    where gap_days is not null
    group by customer_id
),

per_customer as (
    select
        customer_id,
        min(order_date) as first_purchase_date,
        max(order_date) as last_purchase_date,
        sum(day_orders) as orders,
        count(*) as purchase_days,
        avg(day_net) filter (where day_number > 1) as repeat_monetary_avg
    from days
    group by customer_id
),

-- Net spend includes refunds of orders on days without a purchase.
net_all as (
    select customer_id, sum(net_amount) as monetary_total
    from orders
    group by customer_id
),

final as (
    select
        c.customer_id,
        c.first_purchase_date,
        c.last_purchase_date,
        c.orders,
        c.purchase_days,
        c.purchase_days - 1 as frequency,
        cast($as_of - c.last_purchase_date as bigint) as recency_days,
        cast($as_of - c.first_purchase_date as bigint) as tenure_days,
        cast(c.last_purchase_date - c.first_purchase_date as bigint) as t_x_days,
        n.monetary_total,
        n.monetary_total / c.purchase_days as monetary_avg,
        c.repeat_monetary_avg,
        g.typical_gap_days,
        g.gap_spread_days
    from per_customer c
    join net_all n on n.customer_id = c.customer_id
    left join gap_stats g on g.customer_id = c.customer_id
)

select * from final
