-- rfm: recency, frequency and monetary scores 1-5 by quintile (ties share a score) and the
-- named segment of each customer's cell.
with summary as (
    select * from customer_summary
),

cells as (
    select * from rfm_segment_cells
),

scored as (
    select
        customer_id,
        recency_days,
        purchase_days,
        monetary_total,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by recency_days desc))) as int) as r_score,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by purchase_days asc))) as int) as f_score,
        cast(least(5, 1 + floor(5 * percent_rank() over (order by monetary_total asc))) as int) as m_score
    from summary
),

final as (
    select
        s.customer_id,
        s.recency_days,
        s.purchase_days,
        s.monetary_total,
        s.r_score,
        s.f_score,
        s.m_score,
        cast(s.r_score as varchar) || cast(s.f_score as varchar) || cast(s.m_score as varchar) as rfm_cell,
        c.segment
    from scored s
    left join cells c
        on c.r_score = s.r_score and c.f_score = s.f_score and c.m_score = s.m_score
)

select * from final
