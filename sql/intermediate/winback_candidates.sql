-- winback_candidates: every lapsed customer with a treatment (winback_treatment), and what a
-- win-back message may say about them, joined once: the value the campaigns rank by, the
-- lifetime value, the RFM segment, the evidence of a lapse the company caused (worded for a
-- message in reason_text: the raw evidence, order numbers and amounts, stays internal), the
-- favourite channel and the customer's history. One row per customer; entry_date is the
-- lapse's alert date, so a campaign enters each lapse once, however many nights the
-- customer stays lapsed. The audiences (sql/audiences/) are filters over this table, one per
-- campaign: a new campaign picks its customers and columns here. Consent, address and
-- unsubscribes are not filtered here: the campaign planner suppresses with a reason.
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

channel_orders as (
    select customer_id, channel, count(*) as orders
    from purchases_clean
    where channel is not null
    group by customer_id, channel
),

-- The channel the customer ordered through most (ties: alphabetical): an aggregate's
-- ordered first value, not a row_number() window (one hash aggregation, no sort).
favourite as (
    select customer_id, first_value(channel order by orders desc, channel) as favourite_channel
    from channel_orders
    group by customer_id
),

final as (
    select
        t.customer_id,
        t.alert_date as entry_date,
        -- what the campaigns rank and budget by: the second lifetime value, else the
        -- lifetime value (no sltv fitted), else nothing
        coalesce(t.sltv, l.clv, 0.0) as value,
        t.sltv,
        l.clv,
        t.grade,
        t.treatment,
        t.timing,
        t.stage,
        t.reason_owner,
        coalesce(g.segment, 'unknown') as segment,
        t.reason,
        -- worded for a message by the seed reason_codes
        coalesce(rc.reason_text, 'your last experience with us') as reason_text,
        r.evidence_date,
        r.evidence_count,
        coalesce(f.favourite_channel, 'our shop') as favourite_channel,
        s.recency_days as days_since_last_purchase,
        cast(s.recency_days / 30 as bigint) as months_since_last_purchase,
        s.last_purchase_date,
        s.orders,
        s.monetary_total
    from treatment t
    join summary s on s.customer_id = t.customer_id
    left join reasons r on r.customer_id = t.customer_id
    left join segments g on g.customer_id = t.customer_id
    left join lifetime l on l.customer_id = t.customer_id
    left join favourite f on f.customer_id = t.customer_id
    left join reason_codes rc on rc.reason_code = t.reason
)

select * from final
