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

-- as_of as a day number is written out where it is used, not cross-joined from a one-row
-- table: on Ballista 55 those joins inside union branches gave one stage's tasks plans of
-- different sizes, whose metrics the scheduler failed to merge, dropping a task's status
-- (the job then hung, now and then). tests/ballista.rs checks the scheduler's log.
weeks as (
    select
        k as week,
        arrow_cast($as_of, 'Int32') - 7 * k - 6 as first_day,
        arrow_cast($as_of, 'Int32') - 7 * k as last_day
    from (select unnest(range(0, 26)) as k)
),

groups as (
    select customer_id, dimension, segment
    from customer_groups
    where dimension in ('value_grade', 'rfm_segment')
    union all
    select customer_id, 'all', 'all' from rhythm
),

recent_days as (
    select customer_id, day, alert_after, previous_day, next_day from recent_purchase_days
),

-- Every lapse: a silence that ended with a return, or the open one up to as_of.
all_lapses as (
    select customer_id, previous_day as last_day, previous_day + alert_after as alert_day
    from recent_days
    where day - previous_day >= alert_after
    union all
    select
        customer_id,
        arrow_cast(last_purchase_date, 'Int32') as last_day,
        arrow_cast(last_purchase_date, 'Int32') + cast(alert_after_days as int) as alert_day
    from rhythm
    where recency_days >= alert_after_days
),

-- Each lapse in its week (days ago / 7), a customer once per week (the first alert).
lapses as (
    select customer_id, week, last_day
    from (
        select
            customer_id,
            week,
            last_day,
            row_number() over (partition by customer_id, week order by alert_day) as nth
        from (
            select customer_id, last_day, alert_day, (arrow_cast($as_of, 'Int32') - alert_day) / 7 as week
            from all_lapses
            where alert_day between arrow_cast($as_of, 'Int32') - 181 and arrow_cast($as_of, 'Int32')
        )
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

-- Active on a week's eve (its first day - 1, as_of - 7 - 7 x week): a purchase day within
-- the alert_after_days - 1 days before it. The latest purchase day before an eve decides,
-- so each purchase day d covers the eves d + 1 .. min(next purchase day, d + alert_after
-- - 1), the weeks from (as_of - 7 - that last eve) / 7 rounded up to (as_of - 7 - d - 1)
-- / 7 rounded down: +1 from the first of them, -1 after the last, summed over the weeks
-- from the newest. No customer-week is ever materialised.
active_spans as (
    select
        customer_id,
        greatest(cast(ceil((arrow_cast($as_of, 'Int32') - 7 - least(coalesce(next_day, day + alert_after - 1),
                                                 day + alert_after - 1)) / 7.0) as bigint), 0)
            as from_week,
        least(cast(floor((arrow_cast($as_of, 'Int32') - 7 - day - 1) / 7.0) as bigint), 25) as to_week
    from recent_days
),

active_steps as (
    select customer_id, from_week as week, 1 as step
    from active_spans where from_week <= to_week
    union all
    select customer_id, to_week + 1, -1
    from active_spans where from_week <= to_week and to_week < 25
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
        and treatment is distinct from 'recognition'   -- not a lapse (vip_recognition)
    group by customer_id, entry_date
    having not bool_or(state = 'delivered')
),

-- One row per customer and week for each thing counted: a new lapse (with its revenue
-- and predicted CLV), a win-back, a holdout lapse (and whether it came back by itself).
events as (
    select
        l.customer_id, l.week, 1 as lapse, l.revenue, v.clv,
        0 as won_back, 0 as holdout, 0 as returned
    from lapse_revenue l
    left join ltv v on v.customer_id = l.customer_id
    union all
    select r.customer_id, (arrow_cast($as_of, 'Int32') - arrow_cast(r.return_date, 'Int32')) / 7, 0, null, null, 1, 0, 0
    from reactivated_customers r
    where r.return_kind = 'won_back'
        and arrow_cast(r.return_date, 'Int32') between arrow_cast($as_of, 'Int32') - 181 and arrow_cast($as_of, 'Int32')
    union all
    select
        h.customer_id, (arrow_cast($as_of, 'Int32') - h.day) / 7, 0, null, null, 0, 1,
        case when n.customer_id is null then 0 else 1 end
    from holdout_entries h
    left join reactivated_customers n
        on n.customer_id = h.customer_id
        and n.entry_date = h.entry_date
        and n.return_kind = 'natural'
    where h.day between arrow_cast($as_of, 'Int32') - 181 and arrow_cast($as_of, 'Int32')
),

counted as (
    select
        e.week,
        g.dimension,
        g.segment,
        sum(e.lapse) as lapses,
        money_sum(e.revenue) filter (where e.lapse = 1) as revenue,
        money_sum(e.clv) filter (where e.lapse = 1) as clv,
        sum(e.won_back) as won_back,
        sum(e.holdout) as holdout,
        sum(e.returned) as returned
    from events e
    join groups g on g.customer_id = e.customer_id
    group by e.week, g.dimension, g.segment
),

active_changes as (
    select s.week, g.dimension, g.segment, sum(s.step) as change
    from active_steps s
    join groups g on g.customer_id = s.customer_id
    group by s.week, g.dimension, g.segment
),

grid as (
    select w.week, w.first_day, w.last_day, g.dimension, g.segment
    from weeks w
    cross join (select distinct dimension, segment from groups) g
),

counted_active as (
    select
        x.week,
        x.dimension,
        x.segment,
        sum(coalesce(a.change, 0)) over (
            partition by x.dimension, x.segment order by x.week
            rows between unbounded preceding and current row
        ) as customers
    from grid x
    left join active_changes a
        on a.week = x.week and a.dimension = x.dimension and a.segment = x.segment
),

scored as (
    select count(*) as customers from ltv
),

final as (
    select
        arrow_cast(x.first_day, 'Date32') as week_start,
        arrow_cast(x.last_day, 'Date32') as week_end,
        x.dimension,
        x.segment,
        coalesce(a.customers, 0) as active_customers,
        coalesce(c.lapses, 0) as new_lapses,
        cast(coalesce(c.lapses, 0) as double) / nullif(a.customers, 0) as churn_rate,
        coalesce(c.revenue, 0.0) as revenue_at_risk,
        case when s.customers > 0 then coalesce(c.clv, 0.0) end as clv_at_risk,
        coalesce(c.won_back, 0) as won_back,
        coalesce(c.holdout, 0) as holdout_customers,
        coalesce(c.returned, 0) as natural_returns,
        cast(c.returned as double) / nullif(c.holdout, 0) as natural_return_rate,
        x.last_day + 1 + $attribution_days <= arrow_cast($as_of, 'Int32') as holdout_window_complete
    from grid x
    cross join scored s
    left join counted_active a
        on a.week = x.week and a.dimension = x.dimension and a.segment = x.segment
    left join counted c
        on c.week = x.week and c.dimension = x.dimension and c.segment = x.segment
)

select * from final
