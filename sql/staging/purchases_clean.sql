-- purchases_clean: one row per order (order_id and customer), before as_of, refunds netted
-- against their order. The source already set aside rows that break a rule (see the
-- quarantine table) and exact copies of a line. Most orders are a single line, with nothing
-- to net: they pass through as they are. A row with no order_id is its own order (two
-- identical rows are two purchases), with order_id empty. Only the lines of orders with
-- several lines (multi_line_orders) are grouped and netted.
with source as (
    select
        *,
        case when order_id is not null then key_hash(order_id, customer_id) end as order_key
    from purchases
),

-- A single line is a purchase (amount >= 0, $0 included) or a refund (amount < 0).
single_line_orders as (
    select
        order_id,
        customer_id,
        order_ts,
        case when amount > 0 then amount else 0 end as gross_amount,
        case when amount < 0 then -amount else 0 end as refund_amount,
        case when amount < 0 then order_ts end as refund_ts,
        case when amount >= 0 then quantity end as quantity,
        channel,
        1 as line_rows
    from source s
    where not exists (select 1 from multi_line_orders m where m.order_key = s.order_key)
),

-- Lines sharing an order id are one order: purchases and refunds netted. Amounts are summed
-- with money_sum(), as decimal(38, 6): exactly, so the result does not depend on the order the lines arrive
-- in (a float sum does, in its last bits, and that order changes with the partitioning).
netted_orders as (
    select
        order_id,
        customer_id,
        coalesce(min(order_ts) filter (where amount >= 0), min(order_ts)) as order_ts,
        coalesce(money_sum(amount) filter (where amount > 0), 0) as gross_amount,
        coalesce(-money_sum(amount) filter (where amount < 0), 0) as refund_amount,
        max(order_ts) filter (where amount < 0) as refund_ts,
        money_sum(quantity) filter (where amount >= 0) as quantity,
        max(channel) as channel,
        count(*) as line_rows
    from source s
    where exists (select 1 from multi_line_orders m where m.order_key = s.order_key)
    group by order_id, customer_id
),

orders as (
    select * from single_line_orders
    union all
    select * from netted_orders
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
