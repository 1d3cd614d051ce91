-- winback_long_term: the audience of the long-term win-back campaign. High-value
-- customers worth winning back (win_back or make_amends) whose relationship has ended
-- (timing long_term): fewer, slower messages that reopen the door rather than push a
-- deal. A customer moving from the quick campaigns to this one keeps the same alert
-- date, and the frequency cap keeps the switch from doubling up messages. One row per
-- customer, from winback_candidates (entry_date: the lapse's alert date).
select
    customer_id,
    entry_date,
    value,
    sltv,
    clv,
    grade,
    treatment,
    reason_owner,
    segment,
    days_since_last_purchase,
    months_since_last_purchase,
    last_purchase_date,
    orders,
    monetary_total
from winback_candidates
where treatment in ('win_back', 'make_amends') and timing = 'long_term'
