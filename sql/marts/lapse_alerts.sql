-- lapse_alerts: customers silent for longer than lapse_factor x their own typical gap.
-- is_first_alert marks the run in which the threshold was first crossed, so a nightly run
-- raises each lapse once: the moment the customer first misses their usual rhythm.
-- Customers who buy again leave the table. Risk grows through stages: value_damaged,
-- discontent, ended.
with rhythm as (
    select * from customer_rhythm
),

lapsed as (
    select
        *,
        cast(recency_days as double) / typical_gap_days as overshoot_ratio
    from rhythm
    where recency_days >= alert_after_days
),

final as (
    select
        customer_id,
        segment,
        last_purchase_date,
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
        -- last purchase day + ceil(threshold), with dates as day numbers (Arrow Date32)
        arrow_cast(arrow_cast(last_purchase_date, 'Int32') + cast(alert_after_days as int), 'Date32') as alert_date,
        recency_days - alert_after_days < $run_interval_days as is_first_alert
    from lapsed
)

select * from final
