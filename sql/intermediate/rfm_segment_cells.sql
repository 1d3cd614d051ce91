-- rfm_segment_cells: all 125 (r, f, m) score cells with the segment the rules give them,
-- so rfm can join on equality instead of testing every rule for every customer.
with rules as (
    select * from rfm_segment_rules
),

scores as (
    select unnest(range(1, 6)) as score
),

cells as (
    select r.score as r_score, f.score as f_score, m.score as m_score
    from scores r cross join scores f cross join scores m
),

matched as (
    select
        c.r_score,
        c.f_score,
        c.m_score,
        rules.segment,
        row_number() over (
            partition by c.r_score, c.f_score, c.m_score order by rules.priority
        ) as pick
    from cells c
    join rules
        on c.r_score between rules.r_min and rules.r_max
        and c.f_score between rules.f_min and rules.f_max
        and c.m_score between rules.m_min and rules.m_max
),

final as (
    select cast(r_score as int) as r_score, cast(f_score as int) as f_score, cast(m_score as int) as m_score, segment
    from matched
    where pick = 1
)

select * from final
