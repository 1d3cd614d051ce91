-- customer_groups: the groups a customer belongs to, one row per customer and dimension,
-- for the school-of-fish alerts (segment_alerts). To watch another dimension (a region, a
-- loyalty tier), add a union branch here.
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

customers_src as (
    select customer_id, country from customers
),

-- The acquisition channel: of the orders on the first purchase day, the earliest (an
-- aggregate's ordered first value: one hash aggregation, no sort of the orders).
first_orders as (
    select
        o.customer_id,
        first_value(o.channel order by o.order_ts, o.order_id, o.channel) as first_channel
    from purchases_clean o
    join customer_summary s
        on s.customer_id = o.customer_id and o.order_date = s.first_purchase_date
    group by o.customer_id
),

final as (
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
)

select * from final
