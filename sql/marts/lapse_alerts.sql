-- lapse_alerts: customers silent for longer than lapse_factor x their own typical gap.
-- is_first_alert marks the run in which the threshold was first crossed, so a nightly run
-- raises each lapse once: the moment the customer first misses their usual rhythm.
-- Customers without a rhythm of their own (one purchase day) borrow the median gap of
-- repeat customers in their RFM segment, or of all repeat customers.
with summary as (
    select * from customer_summary
),

segments as (
    select customer_id, segment from rfm
),

segment_gaps as (
    select g.segment, median(s.typical_gap_days) as segment_gap
    from summary s
    join segments g on g.customer_id = s.customer_id
    where s.typical_gap_days is not null
    group by g.segment
),

overall_gap as (
    select median(typical_gap_days) as all_gap
    from summary
    where typical_gap_days is not null
),

rhythm as (
    select
        s.customer_id,
        g.segment,
        s.last_purchase_date,
        s.recency_days,
        coalesce(s.typical_gap_days, sg.segment_gap, o.all_gap) as typical_gap_days,
        case when s.typical_gap_days is not null then 'own' else 'population' end as gap_source
    from summary s
    join segments g on g.customer_id = s.customer_id
    left join segment_gaps sg on sg.segment = g.segment
    cross join overall_gap o
),

measured as (
    select
        *,
        $lapse_factor * typical_gap_days as threshold_days,
        cast(recency_days as double) / typical_gap_days as overshoot_ratio,
        cast(ceil($lapse_factor * typical_gap_days) as bigint) as alert_after_days
    from rhythm
    where typical_gap_days > 0
),

final as (
    select
        customer_id,
        segment,
        typical_gap_days,
        gap_source,
        threshold_days,
        recency_days,
        overshoot_ratio,
        case
            when overshoot_ratio < $discontent_factor * $lapse_factor then 'value_damaged'
            when overshoot_ratio < $ended_factor * $lapse_factor then 'discontent'
            else 'ended'
        end as stage,
        -- last purchase day + ceil(threshold): dates as day numbers (Arrow Date32).
        arrow_cast(arrow_cast(last_purchase_date, 'Int32') + cast(alert_after_days as int), 'Date32') as alert_date,
        recency_days - alert_after_days < $run_interval_days as is_first_alert
    from measured
    where recency_days >= alert_after_days
)

select * from final
