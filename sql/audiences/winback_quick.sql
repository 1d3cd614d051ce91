-- winback_quick: the audience of the quick win-back campaign. High-value customers who
-- left for their own reasons (treatment win_back) and are still freshly lapsed (timing
-- quick): a personal message with an offer matched to their history, right after the
-- lapse. let_go and opportunistic customers are never in this table. One row per customer,
-- from winback_candidates (entry_date: the lapse's alert date).
select
    customer_id,
    entry_date,
    value,
    sltv,
    clv,
    grade,
    treatment,
    stage,
    segment,
    favourite_channel,
    days_since_last_purchase,
    last_purchase_date,
    orders,
    monetary_total
from winback_candidates
where treatment = 'win_back' and timing = 'quick'
