-- purchase_days: one row per customer and day with a purchase: an order that is not only a
-- refund. A $0 order (a free promotion, a full voucher) is a purchase occasion; a day with
-- nothing but refunds is not. Refunds count against the day of their order. Gaps between the days are measured per customer
-- with gap_stats() (customer_summary), without sorting every day of every customer.
with orders as (
    select * from purchases_clean
),

days as (
    select
        customer_id,
        order_date,
        count(*) as day_orders,
        -- exact (decimal) sum: the same whatever order the orders arrive in
        cast(sum(cast(net_amount as decimal(38, 6))) as double) as day_net,
        count(*) filter (where gross_amount > 0 or refund_amount = 0) as day_purchases
    from orders
    group by customer_id, order_date
),

final as (
    select customer_id, order_date, day_orders, day_net
    from days
    where day_purchases > 0
)

select * from final
