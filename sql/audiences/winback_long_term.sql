-- winback_long_term: the audience of the long-term win-back campaign. High-value
-- customers worth winning back (win_back or make_amends) whose relationship has ended
-- (timing long_term): fewer, slower messages that reopen the door rather than push a
-- deal. A customer moving from the quick campaigns to this one keeps the same alert
-- date, and the frequency cap keeps the switch from doubling up messages. One row per
-- customer; entry_date is the lapse's alert date.
with treatment as (
    select * from winback_treatment
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
        t.reason_owner,
        coalesce(g.segment, 'unknown') as segment,
        s.recency_days as days_since_last_purchase,
        cast(s.recency_days / 30 as bigint) as months_since_last_purchase,
        s.last_purchase_date,
        s.orders,
        s.monetary_total
    from treatment t
    join summary s on s.customer_id = t.customer_id
    left join segments g on g.customer_id = t.customer_id
    left join lifetime l on l.customer_id = t.customer_id
    where t.treatment in ('win_back', 'make_amends') and t.timing = 'long_term'
)

select * from final
