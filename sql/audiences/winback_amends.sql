-- winback_amends: the audience of the make-amends campaign (CPR: Comprehend, Propose,
-- Respond). High-value customers whose lapse follows a sign that we let them down (a
-- complaint, a service ticket, a bad review, a refund) and who are still freshly lapsed:
-- the first message asks what went wrong, the next proposes a fair remedy, the last
-- follows up. Long-lost ones are in winback_long_term. One row per customer; entry_date is
-- the lapse's alert date. reason_text words the evidence for a message ("your recent
-- complaint"); the raw evidence (order numbers, amounts) stays internal.
with treatment as (
    select * from winback_treatment
),

reasons as (
    select customer_id, evidence_date, evidence_count from lapse_reasons
),

segments as (
    select customer_id, segment from rfm
),

summary as (
    select customer_id, last_purchase_date, recency_days, orders, monetary_total
    from customer_summary
),

lifetime as (
    select customer_id, clv from ltv
),

final as (
    select
        t.customer_id,
        t.alert_date as entry_date,
        coalesce(t.sltv, l.clv, 0.0) as value,
        t.sltv,
        l.clv,
        t.grade,
        t.treatment,
        t.stage,
        coalesce(g.segment, 'unknown') as segment,
        t.reason,
        case t.reason
            when 'complaint' then 'your complaint'
            when 'service_ticket' then 'your recent request to our service team'
            when 'bad_review' then 'your review'
            when 'refund_request' then 'your refund request'
            when 'refund' then 'the order you sent back'
            else 'your last experience with us'
        end as reason_text,
        r.evidence_date,
        r.evidence_count,
        s.recency_days as days_since_last_purchase,
        s.last_purchase_date,
        s.orders,
        s.monetary_total
    from treatment t
    join summary s on s.customer_id = t.customer_id
    left join reasons r on r.customer_id = t.customer_id
    left join segments g on g.customer_id = t.customer_id
    left join lifetime l on l.customer_id = t.customer_id
    where t.treatment = 'make_amends' and t.timing = 'quick'
)

select * from final
