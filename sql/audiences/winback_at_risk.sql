-- winback_at_risk: the audience of the CPR-before-the-silence campaign. High-value
-- customers who still buy but show a warning (at_risk_customers: a recent complaint, a
-- slowing rhythm, a drop in P(alive)): ask what is wrong and propose a remedy before they
-- go quiet. Its campaign outranks the win-back ones, and a customer who lapses leaves this
-- audience for them. One row per customer (entry_date: the warning's, stable while it
-- lasts; value: the CLV, else the revenue so far; reason_text: the warning worded for a
-- message).
with at_risk as (
    select * from at_risk_customers
),

summary as (
    select customer_id, last_purchase_date, recency_days, orders, monetary_total
    from customer_summary
)

select
    a.customer_id,
    a.entry_date,
    coalesce(l.clv, s.monetary_total, 0.0) as value,
    l.clv,
    a.grade,
    a.warning,
    a.stage,
    coalesce(g.segment, 'unknown') as segment,
    case
        when a.warning = 'complaint' then coalesce(rc.reason_text, 'your last order')
        else 'that we have not seen you as often lately'
    end as reason_text,
    a.complaint_date,
    a.complaints,
    s.recency_days as days_since_last_purchase,
    s.last_purchase_date,
    s.orders,
    s.monetary_total
from at_risk a
join summary s on s.customer_id = a.customer_id
left join ltv l on l.customer_id = a.customer_id
left join rfm g on g.customer_id = a.customer_id
left join reason_codes rc on rc.reason_code = a.complaint_kind
