-- purchase_days: one row per customer and day with a purchase: an order that is not only a
-- refund. A $0 order (a free promotion, a full voucher) is a purchase occasion; a day with
-- nothing but refunds is not. Refunds count against the day of their order. Gaps between
-- the days are measured per customer with gap_stats() (customer_summary), without sorting
-- every day of every customer.
with orders as (
    select
        *,
        key_hash(customer_id, order_date) as day_key,
        -- a purchase: anything but a pure refund
        gross_amount > 0 or refund_amount = 0 as is_purchase
    from purchases_clean
),

-- Most days hold one order: the day is that order, when it is a purchase. Its net is kept to
-- the millionth, as the exact sums of several orders below are.
single_order_days as (
    select customer_id, order_date, 1 as day_orders, round(net_amount, 6) as day_net
    from orders o
    where is_purchase
        and not exists (select 1 from multi_order_days m where m.day_key = o.day_key)
),

-- Days of several orders (multi_order_days): counted and netted together.
shared_days as (
    select
        customer_id,
        order_date,
        count(*) as day_orders,
        -- exact (money_sum): the same whatever order the orders arrive in
        money_sum(net_amount) as day_net,
        bool_or(is_purchase) as has_purchase
    from orders o
    where exists (select 1 from multi_order_days m where m.day_key = o.day_key)
    group by customer_id, order_date
),

final as (
    select * from single_order_days
    union all
    select customer_id, order_date, day_orders, day_net
    from shared_days
    where has_purchase
)

select * from final
