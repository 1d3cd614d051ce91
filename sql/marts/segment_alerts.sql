-- segment_alerts: the school of fish. For each group of customers (customer_groups: RFM
-- segment while active, value grade, country, first purchase channel) count the lapses
-- whose alert date fell in the last 7 days and compare with each of the 8 weeks before.
-- Many customers of one kind leaving together warns of a larger problem. Past lapses are
-- found in the purchase history (a gap longer than the customer's threshold), measured
-- with today's rhythm.
with rhythm as (
    select * from customer_rhythm
),

groups as (
    select * from customer_groups
),

-- Lapses that ended with a return purchase: a gap between two purchase days at least as
-- long as the customer's alert_after_days, alerting on day (earlier day + alert_after_days).
-- recent_purchase_days holds each customer's purchase days of the last 182 + alert_after
-- days with the day before each: a gap that alerted within these 9 weeks starts inside
-- that window, and one starting earlier alerted before them (filtered out below).
past_lapses as (
    select customer_id, previous_day + alert_after as alert_day
    from recent_purchase_days
    where day - previous_day >= alert_after
),

open_lapses as (
    select customer_id,
           arrow_cast(last_purchase_date, 'Int32') + cast(alert_after_days as int) as alert_day
    from rhythm
    where recency_days >= alert_after_days
),

-- Day numbers (days since 1970-01-01) compare with today's.
events as (
    select customer_id, cast((arrow_cast($as_of, 'Int32') - alert_day) / 7 as int) as weeks_ago
    from (select * from past_lapses union all select * from open_lapses)
    where alert_day <= arrow_cast($as_of, 'Int32') and alert_day > arrow_cast($as_of, 'Int32') - 63
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
