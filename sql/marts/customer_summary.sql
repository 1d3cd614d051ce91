-- customer_summary: one row per customer with at least one purchase before as_of.
-- frequency, t_x_days and tenure_days are the BG/NBD inputs (repeat purchase days,
-- first-to-last and first-to-as_of in days); typical_gap_days is the customer's own rhythm:
-- the median gap between consecutive purchase days, gap_spread_days their interquartile
-- range. The history comes from customer_history (maintained per customer across nights);
-- this stage adds what depends on the night: days since the last and the first purchase.
select
    customer_id,
    first_purchase_date,
    last_purchase_date,
    orders,
    purchase_days,
    frequency,
    cast($as_of - last_purchase_date as bigint) as recency_days,
    cast($as_of - first_purchase_date as bigint) as tenure_days,
    t_x_days,
    monetary_total,
    monetary_avg,
    repeat_monetary_avg,
    typical_gap_days,
    gap_spread_days
from customer_history
