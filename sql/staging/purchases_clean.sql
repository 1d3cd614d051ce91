-- purchases_clean: one row per order (order_id and customer), before as_of, refunds netted
-- against their order. The source already set aside rows that break a rule (see the
-- quarantine table). A row with no order_id is its own order.
with source as (
    select * from purchases
),

lines as (
    select * from source where order_id is not null
),

orders as (
    select
        order_id,
        customer_id,
        coalesce(min(order_ts) filter (where amount > 0), min(order_ts)) as order_ts,
        coalesce(sum(amount) filter (where amount > 0), 0) as gross_amount,
        coalesce(-sum(amount) filter (where amount < 0), 0) as refund_amount,
        sum(amount) as net_amount,
        max(order_ts) filter (where amount < 0) as refund_ts,
        sum(quantity) filter (where amount > 0) as quantity,
        max(channel) as channel,
        count(*) as line_rows
    from lines
    group by order_id, customer_id
),

single_rows as (
    select
        'row:' || customer_id || ':' || cast(order_ts as varchar) || ':' || cast(amount as varchar) as order_id,
        customer_id,
        order_ts,
        greatest(amount, 0) as gross_amount,
        greatest(-amount, 0) as refund_amount,
        amount as net_amount,
        case when amount < 0 then order_ts end as refund_ts,
        case when amount > 0 then quantity end as quantity,
        channel,
        1 as line_rows
    from source
    where order_id is null
),

final as (
    select
        order_id,
        customer_id,
        order_ts,
        cast(order_ts as date) as order_date,
        gross_amount,
        refund_amount,
        net_amount,
        refund_ts,
        quantity,
        channel,
        line_rows
    from (select * from orders union all select * from single_rows)
)

select * from final
