-- at_risk_customers: CPR before the silence (seed 000, ch. 4; seed 004, 7.1; seed 003).
-- High-value customers (grade A or B) who are not lapsed yet (not in lapse_alerts) but
-- show a warning, with the evidence; one row per customer, every warning they show:
--   complaint     a complaint, service ticket, bad review, refund request (complaints) or
--                 a refund (purchases_clean) in the last at_risk_window_days days
--                 (from as_of - at_risk_window_days up to the day before as_of);
--   slowing       their rhythm is slowing: with at least four purchase days, their last
--                 two gaps are each longer than their baseline, the median of their gaps
--                 before those two, and the last is at least at_risk_rhythm_factor x the
--                 baseline (the books' 2 -> 3 -> 4 months: baseline 2, gaps 3 and 4);
--   p_alive_drop  their P(alive) (ltv) fell by more than at_risk_p_alive_drop since the
--                 previous run (previous_ltv: the ltv output of the latest as_of before
--                 this run's; a first run sees no drop).
-- warning names the first that applies in that order. A complaint damages the
-- relationship before the silence: stage is 'value_damaged' (the first lapse stage, before
-- discontent and ended), otherwise 'at_risk'. entry_date, the day the campaign enters the
-- warning, stays put while the warning lasts: the earliest of the first complaint in the
-- window, the last purchase (a slowing rhythm is known from then) and, for a drop only,
-- as_of. Customers who lapse leave this table for the win-back audiences.
with high_value as (
    select g.customer_id, g.grade
    from value_grade g
    where g.grade in ('A', 'B')
        and not exists (select 1 from lapse_alerts l where l.customer_id = g.customer_id)
),

window_start as (
    select arrow_cast($as_of, 'Int32') - $at_risk_window_days as first_day
),

signals as (
    select customer_id, cast(ts as date) as signal_date, kind as signal, kind as detail
    from complaints
    union all
    select customer_id, cast(refund_ts as date), 'refund', 'refund of ' || cast(refund_amount as varchar) || coalesce(' on order ' || order_id, '')
    from purchases_clean
    where refund_amount > 0 and refund_ts is not null and cast(refund_ts as date) < $as_of
),

recent as (
    select
        h.customer_id,
        s.signal_date,
        s.signal,
        s.detail,
        row_number() over (partition by h.customer_id order by s.signal_date desc, s.signal, s.detail) as newest,
        min(s.signal_date) over (partition by h.customer_id) as first_date,
        count(*) over (partition by h.customer_id) as signals
    from high_value h
    join signals s on s.customer_id = h.customer_id
    cross join window_start w
    where arrow_cast(s.signal_date, 'Int32') >= w.first_day
),

complained as (
    select customer_id, signal_date, signal, detail, first_date, signals
    from recent
    where newest = 1
),

-- Both windows are ordered the same way (from_last counts back from the count): Ballista 55
-- gave a lag() ordered ascending the order of a row_number() ordered descending beside it.
gaps as (
    select
        d.customer_id,
        d.order_date,
        arrow_cast(d.order_date, 'Int32')
            - arrow_cast(lag(d.order_date) over (partition by d.customer_id order by d.order_date), 'Int32') as gap,
        count(*) over (partition by d.customer_id)
            - row_number() over (partition by d.customer_id order by d.order_date) + 1 as from_last
    from purchase_days d
    join high_value h on h.customer_id = d.customer_id
),

rhythm as (
    select
        customer_id,
        max(case when from_last = 1 then order_date end) as last_purchase_date,
        max(case when from_last = 1 then gap end) as last_gap,
        max(case when from_last = 2 then gap end) as previous_gap,
        median(case when from_last > 2 then cast(gap as double) end) as baseline_gap,
        count(gap) as gap_count
    from gaps
    group by customer_id
),

slowing as (
    select *
    from rhythm
    where gap_count >= 3
        and previous_gap > baseline_gap
        and last_gap > baseline_gap
        and last_gap >= $at_risk_rhythm_factor * baseline_gap
),

dropped as (
    select h.customer_id, p.p_alive as previous_p_alive, l.p_alive, p.as_of as previous_as_of
    from high_value h
    join ltv l on l.customer_id = h.customer_id
    join previous_ltv p on p.customer_id = h.customer_id
    where p.p_alive - l.p_alive > $at_risk_p_alive_drop
),

final as (
    select
        h.customer_id,
        h.grade,
        case
            when c.customer_id is not null then 'complaint'
            when s.customer_id is not null then 'slowing'
            else 'p_alive_drop'
        end as warning,
        case when c.customer_id is not null then 'value_damaged' else 'at_risk' end as stage,
        case
            when c.customer_id is not null and s.customer_id is not null then least(c.first_date, s.last_purchase_date)
            when c.customer_id is not null then c.first_date
            when s.customer_id is not null then s.last_purchase_date
            else $as_of
        end as entry_date,
        c.customer_id is not null as complaint,
        s.customer_id is not null as slowing,
        p.customer_id is not null as p_alive_drop,
        c.signal as complaint_kind,
        c.detail as complaint_evidence,
        c.signal_date as complaint_date,
        coalesce(c.signals, 0) as complaints,
        s.baseline_gap as baseline_gap_days,
        s.previous_gap as previous_gap_days,
        s.last_gap as last_gap_days,
        p.previous_p_alive,
        p.p_alive,
        p.previous_as_of
    from high_value h
    left join complained c on c.customer_id = h.customer_id
    left join slowing s on s.customer_id = h.customer_id
    left join dropped p on p.customer_id = h.customer_id
    where c.customer_id is not null or s.customer_id is not null or p.customer_id is not null
)

select * from final
