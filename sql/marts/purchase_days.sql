-- purchase_days: one row per customer and day with a purchase (gross spend > 0). Refunds
-- count against the day of their order. Gaps between the days are measured per customer
-- with gap_stats() (customer_summary), without sorting every day of every customer.
with orders as (
    select * from purchases_clean
),

days as (
    select
        customer_id,
        order_date,
        count(*) as day_orders,
        sum(gross_amount) as day_gross,
        sum(net_amount) as day_net
    from orders
    group by customer_id, order_date
),

final as (
    select customer_id, order_date, day_orders, day_net
    from days
    where day_gross > 0
)

select * from final
