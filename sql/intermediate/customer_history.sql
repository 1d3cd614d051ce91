-- customer_history: one row per customer with at least one purchase before as_of, the
-- whole history in one row: first and last purchase day, orders, purchase days, net spend,
-- the spend of the repeat days and the customer's own rhythm (the median gap between
-- consecutive purchase days, gap_spread_days their interquartile range; gap_stats() returns
-- {gaps, median, p25, p75}). Nothing here depends on as_of, so the table is maintained night
-- to night for the customers who bought (incremental_key, pipelines/reactivation.toml);
-- customer_summary adds the columns that do.
with days as (
    select * from purchase_days
),

orders as (
    select * from purchases_clean
),

per_customer as (
    select
        customer_id,
        min(order_date) as first_purchase_date,
        max(order_date) as last_purchase_date,
        sum(day_orders) as orders,
        count(*) as purchase_days,
        -- mean net spend of the repeat days: everything but the first day (an exact decimal
        -- sum, see net_all)
        (money_sum(day_net) - first_value(day_net order by order_date))
            / nullif(count(*) - 1, 0) as repeat_monetary_avg,
        gap_stats(order_date) as gaps
    from days
    group by customer_id
),

-- Net spend includes refunds of orders on days without a purchase. Summed with money_sum(),
-- exactly (as decimal(38, 6)): a float sum differs in its last bits with the order rows arrive in (which varies
-- with the partitioning), which would break ties between equal spenders (their RFM scores,
-- value tiers, the model fits) differently from run to run.
net_all as (
    select customer_id, money_sum(net_amount) as monetary_total
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
        cast(c.last_purchase_date - c.first_purchase_date as bigint) as t_x_days,
        n.monetary_total,
        n.monetary_total / c.purchase_days as monetary_avg,
        c.repeat_monetary_avg,
        c.gaps['median'] as typical_gap_days,
        c.gaps['p75'] - c.gaps['p25'] as gap_spread_days
    from per_customer c
    join net_all n on n.customer_id = c.customer_id
)

select * from final
