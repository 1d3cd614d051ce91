-- rfm: recency, frequency and monetary scores 1-5 by quintile (ties share a score) and the
-- named segment of each customer's cell.
with summary as (
    select * from customer_summary
),

cells as (
    select * from rfm_segment_cells
),

-- percent_rank() = (rank - 1) / (customers - 1), written out: rank() streams through its
-- sorted input, where percent_rank() would hold all customers in one batch.
population as (
    select count(*) as customers from summary
),

ranked as (
    select
        customer_id,
        recency_days,
        purchase_days,
        monetary_total,
        rank() over (order by recency_days desc) as r_rank,
        rank() over (order by purchase_days asc) as f_rank,
        rank() over (order by monetary_total asc) as m_rank
    from summary
),

scored as (
    select
        r.customer_id,
        r.recency_days,
        r.purchase_days,
        r.monetary_total,
        cast(least(5, 1 + floor(5 * coalesce(cast(r.r_rank - 1 as double) / nullif(p.customers - 1, 0), 0))) as int) as r_score,
        cast(least(5, 1 + floor(5 * coalesce(cast(r.f_rank - 1 as double) / nullif(p.customers - 1, 0), 0))) as int) as f_score,
        cast(least(5, 1 + floor(5 * coalesce(cast(r.m_rank - 1 as double) / nullif(p.customers - 1, 0), 0))) as int) as m_score
    from ranked r
    cross join population p
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
