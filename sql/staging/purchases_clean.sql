-- purchases_clean: one row per order (order_id and customer), before as_of, refunds netted
-- against their order. The source already set aside rows that break a rule (see the
-- quarantine table) and exact copies of a line. A row with no order_id is its own order
-- (two identical rows are two purchases), with order_id empty.
with source as (
    select * from purchases
),

-- A line without an order id is keyed by its own values; a line with one, by the order.
lines as (
    select
        *,
        case when order_id is null then order_ts end as own_ts,
        case when order_id is null then amount end as own_amount,
        case when order_id is null then quantity end as own_quantity,
        case when order_id is null then channel end as own_channel
    from source
),

-- Lines sharing an order id are one order: purchases and refunds netted. Identical lines
-- without an id are grouped only to be counted (one pass over the data for both kinds).
-- Amounts are summed as decimal(38, 6): exactly, so the result does not depend on the order
-- the lines arrive in (a float sum does, in its last bits, and that order changes with the
-- partitioning).
grouped as (
    select
        order_id,
        customer_id,
        own_amount,
        own_quantity,
        coalesce(min(order_ts) filter (where amount >= 0), min(order_ts)) as order_ts,
        coalesce(cast(sum(cast(amount as decimal(38, 6))) filter (where amount > 0) as double), 0) as order_gross,
        coalesce(-cast(sum(cast(amount as decimal(38, 6))) filter (where amount < 0) as double), 0) as order_refund,
        max(order_ts) filter (where amount < 0) as refund_ts,
        cast(sum(cast(quantity as decimal(38, 6))) filter (where amount >= 0) as double) as order_quantity,
        max(channel) as channel,
        count(*) as lines_counted
    from lines
    group by order_id, customer_id, own_ts, own_amount, own_quantity, own_channel
),

-- Each of n identical lines without an id is an order of its own: a purchase (amount >= 0,
-- $0 included) or a refund (< 0).
orders as (
    select
        order_id,
        customer_id,
        order_ts,
        case when order_id is null then greatest(own_amount, 0) else order_gross end as gross_amount,
        case when order_id is null then greatest(-own_amount, 0) else order_refund end as refund_amount,
        refund_ts,
        case when order_id is null then (case when own_amount >= 0 then own_quantity end) else order_quantity end as quantity,
        channel,
        case when order_id is null then 1 else lines_counted end as line_rows,
        unnest(range(case when order_id is null then lines_counted else 1 end)) as copy
    from grouped
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
