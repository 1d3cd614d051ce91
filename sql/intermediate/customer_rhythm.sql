-- customer_rhythm: each customer's buying rhythm and the silence that would be a lapse.
-- Customers without a rhythm of their own (one purchase day) borrow the median gap of
-- repeat customers in their RFM segment, or else of all repeat customers (gap_source).
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

final as (
    select
        customer_id,
        segment,
        last_purchase_date,
        recency_days,
        typical_gap_days,
        gap_source,
        $lapse_factor * typical_gap_days as threshold_days,
        -- the alarm rings on the first day the silence exceeds the threshold
        cast(ceil($lapse_factor * typical_gap_days) as bigint) as alert_after_days
    from rhythm
    where typical_gap_days > 0
)

select * from final
