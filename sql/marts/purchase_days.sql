-- purchase_days: one row per customer and day with a purchase (gross spend > 0), numbered,
-- with the gap in days since the customer's previous purchase day. Refunds count against
-- the day of their order.
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
    select
        customer_id,
        order_date,
        day_orders,
        day_net,
        row_number() over (partition by customer_id order by order_date) as day_number,
        cast(order_date - lag(order_date) over (partition by customer_id order by order_date) as double) as gap_days
    from days
    where day_gross > 0
)

select * from final
