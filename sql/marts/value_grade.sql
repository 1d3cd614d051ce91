-- value_grade: the 80/20 view. Customers ranked by net revenue; grade A while the cumulative
-- share stays within grade_a_share, then B, C, D. Net value after an estimated cost to serve
-- shows who is unprofitable: some relationships should be ended, not rescued.
with summary as (
    select * from customer_summary
),

complaint_counts as (
    select customer_id, count(*) as complaints
    from complaints
    group by customer_id
),

refund_counts as (
    select customer_id, count(*) as refunded_orders, money_sum(refund_amount) as refunds
    from purchases_clean
    where refund_amount > 0
    group by customer_id
),

-- Exact sums (money_sum): a float sum's last bits depend on the order rows arrive in, which
-- varies with the partitioning, and every share is divided by this total.
total as (
    select money_sum(monetary_total) as revenue from summary
),

ranked as (
    select
        s.customer_id,
        s.monetary_total,
        s.orders,
        coalesce(c.complaints, 0) as complaints,
        coalesce(r.refunds, 0) as refunds,
        coalesce(r.refunded_orders, 0) as refunded_orders,
        s.monetary_total / nullif(t.revenue, 0) as revenue_share,
        sum(s.monetary_total) over (
            order by s.monetary_total desc, s.customer_id
            rows between unbounded preceding and current row
        ) / nullif(t.revenue, 0) as cumulative_share
    from summary s
    cross join total t
    left join complaint_counts c on c.customer_id = s.customer_id
    left join refund_counts r on r.customer_id = s.customer_id
),

costed as (
    select
        *,
        orders * $cost_per_order
            + complaints * $cost_per_complaint
            + refunded_orders * $cost_per_refund as cost_to_serve
    from ranked
),

final as (
    select
        customer_id,
        monetary_total,
        revenue_share,
        cumulative_share,
        case
            when cumulative_share <= $grade_a_share then 'A'
            when cumulative_share <= $grade_b_share then 'B'
            when cumulative_share <= $grade_c_share then 'C'
            else 'D'
        end as grade,
        orders,
        complaints,
        refunds,
        cost_to_serve,
        monetary_total - cost_to_serve as net_value,
        monetary_total - cost_to_serve <= 0 as unprofitable
    from costed
)

select * from final
