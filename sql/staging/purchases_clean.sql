-- purchases_clean: one row per order (order_id and customer), before as_of, refunds netted
-- against their order. The source already set aside rows that break a rule (see the
-- quarantine table) and exact copies. A row with no order_id is its own order, keyed by
-- its customer, time and amount.
with source as (
    select * from purchases
),

lines as (
    select
        coalesce(
            order_id,
            'row:' || customer_id || ':' || cast(order_ts as varchar) || ':' || cast(amount as varchar)
        ) as order_id,
        customer_id,
        order_ts,
        amount,
        quantity,
        channel
    from source
),

orders as (
    select
        order_id,
        customer_id,
        coalesce(min(order_ts) filter (where amount > 0), min(order_ts)) as order_ts,
        coalesce(sum(amount) filter (where amount > 0), 0) as gross_amount,
        coalesce(-sum(amount) filter (where amount < 0), 0) as refund_amount,
        max(order_ts) filter (where amount < 0) as refund_ts,
        sum(quantity) filter (where amount > 0) as quantity,
        max(channel) as channel,
        count(*) as line_rows
    from lines
    group by order_id, customer_id
),

final as (
    select
        order_id,
        customer_id,
        order_ts,
        cast(order_ts as date) as order_date,
        gross_amount,
        refund_amount,
        gross_amount - refund_amount as net_amount,
        refund_ts,
        quantity,
        channel,
        line_rows
    from orders
)

select * from final
