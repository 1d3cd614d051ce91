-- churn_kpis: how churn is going, week by week. One row per week of the last 26 and per
-- group: dimension 'value_grade' (A-D) and 'rfm_segment' (the segment while active, as in
-- customer_groups), and dimension = segment = 'all' for every customer. Week 0 is the 7
-- days up to $as_of (week_start = as_of - 6, week_end = as_of, both included, as in
-- segment_alerts), week 25 the oldest.
--
-- A lapse is the rule of lapse_alerts applied to the purchase history (as segment_alerts
-- does): a silence of at least alert_after_days (the customer's rhythm measured tonight)
-- after a purchase day, alerting on that day + alert_after_days, whether the customer came
-- back since or not. A customer is active on the eve of a week (week_start - 1) when they
-- had bought and their silence then was shorter than alert_after_days.
--
--   active_customers     active on the eve of the week
--   new_lapses           customers whose lapse alert fell in the week
--   churn_rate           new_lapses / active_customers (NULL with no active customer)
--   revenue_at_risk      net revenue of the newly lapsed in the 365 days up to their last
--                        purchase before the silence: what a year without them costs
--   clv_at_risk          their predicted CLV (ltv.clv, scored tonight); NULL when the
--                        model was not fitted (ltv empty)
--   won_back             lapses ended in the week by a purchase within $attribution_days
--                        after a delivered message (reactivated_customers, by return_date)
--   holdout_customers    lapses held out (never messaged) whose first holdout decision
--                        fell in the week
--   natural_returns      of those, the ones who came back within $attribution_days
--   natural_return_rate  natural_returns / holdout_customers (NULL without a holdout)
--   holdout_window_complete  every holdout decision of the week has had its full
--                        attribution window by as_of (false: the rate may still grow)
with rhythm as (
    select customer_id, last_purchase_date, recency_days, alert_after_days
    from customer_rhythm
),

as_of_day as (
    select arrow_cast($as_of, 'Int32') as today
),

weeks as (
    select
        k as week,
        today - 7 * k - 6 as first_day,
        today - 7 * k as last_day
    from (select unnest(range(0, 26)) as k)
    cross join as_of_day
),

groups as (
    select customer_id, dimension, segment
    from customer_groups
    where dimension in ('value_grade', 'rfm_segment')
    union all
    select customer_id, 'all', 'all' from rhythm
),

-- Only purchase days from 182 + alert_after_days before as_of can start a silence that
-- alerted within the 26 weeks, or keep a customer active on a week's eve.
recent_days as (
    select
        d.customer_id,
        arrow_cast(d.order_date, 'Int32') as day,
        cast(r.alert_after_days as int) as alert_after
    from purchase_days d
    join rhythm r on r.customer_id = d.customer_id
    cross join as_of_day a
    where arrow_cast(d.order_date, 'Int32') >= a.today - 182 - r.alert_after_days
),

past_lapses as (
    select customer_id, previous_day as last_day, previous_day + alert_after as alert_day
    from (
        select customer_id, day, alert_after,
               lag(day) over (partition by customer_id order by day) as previous_day
        from recent_days
    )
    where day - previous_day >= alert_after
),

open_lapses as (
    select
        customer_id,
        arrow_cast(last_purchase_date, 'Int32') as last_day,
        arrow_cast(last_purchase_date, 'Int32') + cast(alert_after_days as int) as alert_day
    from rhythm
    where recency_days >= alert_after_days
),

-- A customer once per week (the first alert of the week, should there be two).
lapses as (
    select customer_id, week, last_day
    from (
        select
            l.customer_id,
            w.week,
            l.last_day,
            row_number() over (partition by l.customer_id, w.week order by l.alert_day) as nth
        from (select * from past_lapses union all select * from open_lapses) l
        join weeks w on l.alert_day between w.first_day and w.last_day
    )
    where nth = 1
),

lapse_revenue as (
    select l.customer_id, l.week, coalesce(money_sum(p.net_amount), 0.0) as revenue
    from lapses l
    left join purchases_clean p
        on p.customer_id = l.customer_id
        and arrow_cast(p.order_date, 'Int32') > l.last_day - 365
        and arrow_cast(p.order_date, 'Int32') <= l.last_day
    group by l.customer_id, l.week
),

scored as (
    select count(*) as customers from ltv
),

-- Active on the eve (first_day - 1): a purchase day within the alert_after_days - 1 days
-- before it.
active as (
    select distinct d.customer_id, w.week
    from recent_days d
    join weeks w
        on w.first_day - 1 - d.day >= 1
        and w.first_day - 1 - d.day < d.alert_after
),

won_back as (
    select r.customer_id, w.week
    from reactivated_customers r
    join weeks w
        on arrow_cast(r.return_date, 'Int32') between w.first_day and w.last_day
    where r.return_kind = 'won_back'
),

-- Lapses held out and never messaged, dated by their first holdout decision.
holdout_entries as (
    select
        customer_id,
        entry_date,
        -- the decision's day, at the latest the night's (as in reactivated_customers)
        min(case
            when date_part('epoch', coalesce(sent_at, created_at))
                < date_part('epoch', cast(as_of as timestamp)) + 86400
                then arrow_cast(cast(coalesce(sent_at, created_at) as date), 'Int32')
            else arrow_cast(as_of, 'Int32')
        end) as day
    from sends
    where state in ('delivered', 'holdout')
    group by customer_id, entry_date
    having not bool_or(state = 'delivered')
),

holdout as (
    select
        h.customer_id,
        w.week,
        n.customer_id is not null as returned
    from holdout_entries h
    join weeks w on h.day between w.first_day and w.last_day
    left join reactivated_customers n
        on n.customer_id = h.customer_id
        and n.entry_date = h.entry_date
        and n.return_kind = 'natural'
),

grid as (
    select w.week, w.first_day, w.last_day, g.dimension, g.segment
    from weeks w
    cross join (select distinct dimension, segment from groups) g
),

counted_active as (
    select a.week, g.dimension, g.segment, count(*) as customers
    from active a join groups g on g.customer_id = a.customer_id
    group by a.week, g.dimension, g.segment
),

counted_lapses as (
    select
        l.week,
        g.dimension,
        g.segment,
        count(*) as lapses,
        money_sum(l.revenue) as revenue,
        money_sum(v.clv) as clv
    from lapse_revenue l
    join groups g on g.customer_id = l.customer_id
    left join ltv v on v.customer_id = l.customer_id
    group by l.week, g.dimension, g.segment
),

counted_won_back as (
    select b.week, g.dimension, g.segment, count(*) as won_back
    from won_back b join groups g on g.customer_id = b.customer_id
    group by b.week, g.dimension, g.segment
),

counted_holdout as (
    select
        h.week,
        g.dimension,
        g.segment,
        count(*) as holdout,
        count(*) filter (where h.returned) as returned
    from holdout h join groups g on g.customer_id = h.customer_id
    group by h.week, g.dimension, g.segment
),

final as (
    select
        arrow_cast(x.first_day, 'Date32') as week_start,
        arrow_cast(x.last_day, 'Date32') as week_end,
        x.dimension,
        x.segment,
        coalesce(a.customers, 0) as active_customers,
        coalesce(l.lapses, 0) as new_lapses,
        cast(coalesce(l.lapses, 0) as double) / nullif(a.customers, 0) as churn_rate,
        coalesce(l.revenue, 0.0) as revenue_at_risk,
        case when s.customers > 0 then coalesce(l.clv, 0.0) end as clv_at_risk,
        coalesce(b.won_back, 0) as won_back,
        coalesce(h.holdout, 0) as holdout_customers,
        coalesce(h.returned, 0) as natural_returns,
        cast(h.returned as double) / nullif(h.holdout, 0) as natural_return_rate,
        x.last_day + 1 + $attribution_days <= t.today as holdout_window_complete
    from grid x
    cross join scored s
    cross join as_of_day t
    left join counted_active a on a.week = x.week and a.dimension = x.dimension and a.segment = x.segment
    left join counted_lapses l on l.week = x.week and l.dimension = x.dimension and l.segment = x.segment
    left join counted_won_back b on b.week = x.week and b.dimension = x.dimension and b.segment = x.segment
    left join counted_holdout h on h.week = x.week and h.dimension = x.dimension and h.segment = x.segment
)

select * from final
