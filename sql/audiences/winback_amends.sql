-- winback_amends: the audience of the make-amends campaign (CPR: Comprehend, Propose,
-- Respond). High-value customers whose lapse follows a sign that we let them down (a
-- complaint, a service ticket, a bad review, a refund) and who are still freshly lapsed:
-- the first message asks what went wrong, the next proposes a fair remedy, the last
-- follows up. Long-lost ones are in winback_long_term. One row per customer, from
-- winback_candidates (entry_date: the lapse's alert date; reason_text: the evidence worded
-- for a message, "your recent complaint").
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
    reason,
    reason_text,
    evidence_date,
    evidence_count,
    days_since_last_purchase,
    last_purchase_date,
    orders,
    monetary_total
from winback_candidates
where treatment = 'make_amends' and timing = 'quick'
