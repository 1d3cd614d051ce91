-- winback_opportunistic: the audience of the opportunistic campaign, the fourth cell of
-- value x reason (DOMAIN.md): low value (grade C or D), and a sign that the company let
-- them down (a complaint, a service ticket, a bad review, a refund). Not worth a personal
-- effort, worth one cheap apology: a single e-mail with a small code, on a small budget of
-- its own, freshly lapsed or long lost alike (each lapse once). Customers SLTV does not
-- cover, and unprofitable ones, are let go in winback_treatment and never reach this
-- table. One row per customer, from winback_candidates (entry_date: the lapse's alert
-- date; reason_text: the evidence worded for a message).
select
    customer_id,
    entry_date,
    value,
    sltv,
    clv,
    grade,
    treatment,
    timing,
    stage,
    segment,
    reason,
    reason_text,
    evidence_date,
    days_since_last_purchase,
    last_purchase_date,
    orders,
    monetary_total
from winback_candidates
where treatment = 'opportunistic'
