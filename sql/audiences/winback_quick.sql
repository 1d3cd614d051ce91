-- winback_quick: the audience of the quick win-back campaign. High-value customers who
-- left for their own reasons (treatment win_back) and are still freshly lapsed (timing
-- quick): a personal message with an offer matched to their history, right after the
-- lapse. One row per customer; entry_date is the lapse's alert date, so the campaign
-- enters each lapse once, however many nights the customer stays lapsed. Consent, address
-- and unsubscribes are not filtered here: the campaign planner suppresses with a reason.
-- let_go and opportunistic customers are never in this table.
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

channel_orders as (
    select customer_id, channel, count(*) as orders
    from purchases_clean
    where channel is not null
    group by customer_id, channel
),

-- The channel the customer ordered through most (ties: alphabetical).
favourite as (
    select customer_id, channel as favourite_channel
    from (
        select
            customer_id,
            channel,
            row_number() over (partition by customer_id order by orders desc, channel) as pick
        from channel_orders
    )
    where pick = 1
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
        coalesce(f.favourite_channel, 'our shop') as favourite_channel,
        s.recency_days as days_since_last_purchase,
        s.last_purchase_date,
        s.orders,
        s.monetary_total
    from treatment t
    join summary s on s.customer_id = t.customer_id
    left join segments g on g.customer_id = t.customer_id
    left join lifetime l on l.customer_id = t.customer_id
    left join favourite f on f.customer_id = t.customer_id
    where t.treatment = 'win_back' and t.timing = 'quick'
)

select * from final
