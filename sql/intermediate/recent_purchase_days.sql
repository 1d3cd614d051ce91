-- recent_purchase_days: each customer's purchase days of the last 182 + alert_after_days
-- days before as_of (182: churn_kpis' 26 weeks), as day numbers (days since 1970-01-01),
-- with the customer's purchase day before and after each (previous_day, next_day; NULL at
-- either end of this window) and the silence that would be a lapse (alert_after,
-- customer_rhythm's alert_after_days). Only these days can start a silence that alerted
-- within the 26 weeks or keep a customer active on a week's eve; computed once (one sort
-- of the recent days) for churn_kpis, which reads it twice, and segment_alerts (9 weeks).
with rhythm as (
    select customer_id, cast(alert_after_days as int) as alert_after from customer_rhythm
),

recent as (
    select d.customer_id, arrow_cast(d.order_date, 'Int32') as day, r.alert_after
    from purchase_days d
    join rhythm r on r.customer_id = d.customer_id
    where arrow_cast(d.order_date, 'Int32') >= arrow_cast($as_of, 'Int32') - 182 - r.alert_after
)

select
    customer_id,
    day,
    alert_after,
    lag(day) over (partition by customer_id order by day) as previous_day,
    lead(day) over (partition by customer_id order by day) as next_day
from recent
