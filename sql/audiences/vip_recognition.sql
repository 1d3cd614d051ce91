-- vip_recognition: the audience of the thank-you campaign (seed 001, step 6; seed 004,
-- 6.2): the VIPs of vip_customers whose turn has come (out of the cool-down of
-- $vip_cooldown_days since their last thank-you or holdout decision). No discount: the
-- message recognises, it does not sell. Its ledger rows carry treatment 'recognition',
-- which the cool-down (vip_customers) and the results (vip_results) read and the win-back
-- results leave out. entry_date is the start of the customer's current cool-down period
-- (see vip_customers), so each turn is entered once. value ranks a budget cut: the CLV,
-- else (no fitted model) the revenue so far. One row per customer.
select
    customer_id,
    entry_date,
    coalesce(clv, monetary_total) as value,
    clv,
    grade,
    why,
    'recognition' as treatment,
    segment,
    orders,
    monetary_total,
    cast(date_part('year', first_purchase_date) as bigint) as customer_since,
    last_purchase_date,
    recognitions
from vip_customers
where not in_cooldown
