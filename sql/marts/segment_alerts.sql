-- segment_alerts: the school of fish. For each group of customers (RFM segment, country,
-- first purchase channel) count the lapses whose alert date fell in the last 7 days and
-- compare with each of the 8 weeks before. Many customers of one kind leaving together
-- warns of a larger problem. Past lapses are found in the purchase history (a gap longer
-- than the customer's threshold), measured with today's rhythm.
-- A customer's RFM segment drifts as they go silent (Champions become At Risk), so a group
-- is taken as the customer was while active: the segment of their cell with R = 5.
with rhythm as (
    select * from customer_rhythm
),

scores as (
    select customer_id, f_score, m_score from rfm
),

cells as (
    select * from rfm_segment_cells where r_score = 5
),

grades as (
    select customer_id, grade from value_grade
),

days as (
    select * from purchase_days
),

customers_src as (
    select customer_id, country from customers
),

first_orders as (
    select customer_id, first_value(channel order by order_ts, order_id) as first_channel
    from purchases_clean
    group by customer_id
),

as_of_day as (
    select arrow_cast($as_of, 'Int32') as today
),

-- Lapses that ended with a return purchase: a gap between two purchase days at least as
-- long as the customer's alert_after_days, alerting on day (earlier day + alert_after_days).
-- Only days after today - 63 - alert_after_days can start a gap that alerted within the 9
-- weeks, so the window below sorts those days, not the whole history.
recent_days as (
    select d.customer_id, arrow_cast(d.order_date, 'Int32') as day, cast(r.alert_after_days as int) as alert_after
    from days d
    join rhythm r on r.customer_id = d.customer_id
    cross join as_of_day a
    where arrow_cast(d.order_date, 'Int32') > a.today - 63 - r.alert_after_days
),

past_lapses as (
    select customer_id, previous_day + alert_after as alert_day
    from (
        select customer_id, day, alert_after,
               lag(day) over (partition by customer_id order by day) as previous_day
        from recent_days
    )
    where day - previous_day >= alert_after
),

open_lapses as (
    select customer_id,
           arrow_cast(last_purchase_date, 'Int32') + cast(alert_after_days as int) as alert_day
    from rhythm
    where recency_days >= alert_after_days
),

events as (
    select l.customer_id, cast((a.today - l.alert_day) / 7 as int) as weeks_ago
    from (select * from past_lapses union all select * from open_lapses) l
    cross join as_of_day a
    where l.alert_day <= a.today and l.alert_day > a.today - 63
),

groups as (
    select r.customer_id, 'rfm_segment' as dimension, coalesce(c.segment, 'unknown') as segment
    from rhythm r
    join scores s on s.customer_id = r.customer_id
    left join cells c on c.f_score = s.f_score and c.m_score = s.m_score
    union all
    select r.customer_id, 'value_grade', coalesce(g.grade, 'unknown')
    from rhythm r left join grades g on g.customer_id = r.customer_id
    union all
    select r.customer_id, 'country', coalesce(c.country, 'unknown')
    from rhythm r left join customers_src c on c.customer_id = r.customer_id
    union all
    select r.customer_id, 'first_channel', coalesce(f.first_channel, 'unknown')
    from rhythm r left join first_orders f on f.customer_id = r.customer_id
),

sizes as (
    select dimension, segment, count(*) as customers
    from groups
    group by dimension, segment
),

weekly as (
    select g.dimension, g.segment, e.weeks_ago, count(distinct e.customer_id) as lapses
    from events e
    join groups g on g.customer_id = e.customer_id
    group by g.dimension, g.segment, e.weeks_ago
),

stats as (
    select
        s.dimension,
        s.segment,
        s.customers,
        coalesce(sum(w.lapses) filter (where w.weeks_ago = 0), 0) as new_lapses_7d,
        cast(coalesce(sum(w.lapses) filter (where w.weeks_ago between 1 and 8), 0) as double) / 8 as baseline_mean,
        cast(coalesce(sum(w.lapses * w.lapses) filter (where w.weeks_ago between 1 and 8), 0) as double) as sum_sq
    from sizes s
    left join weekly w on w.dimension = s.dimension and w.segment = s.segment
    group by s.dimension, s.segment, s.customers
),

scored as (
    select
        *,
        sqrt(greatest((sum_sq - 8 * baseline_mean * baseline_mean) / 7, 0)) as baseline_std
    from stats
),

final as (
    select
        dimension,
        segment,
        customers,
        new_lapses_7d,
        baseline_mean,
        baseline_std,
        -- with no spread in the baseline, Poisson: variance = mean (at least 1)
        (new_lapses_7d - baseline_mean)
            / case when baseline_std > 0 then baseline_std else sqrt(greatest(baseline_mean, 1.0)) end
            as z_score,
        new_lapses_7d >= $segment_alert_min_lapses
            and (new_lapses_7d - baseline_mean)
                / case when baseline_std > 0 then baseline_std else sqrt(greatest(baseline_mean, 1.0)) end
                >= $segment_alert_z as alert
    from scored
)

select * from final
