-- call_results: the call list's calls and what came of them. One row per call on a list
-- (a ledger row of medium 'call' the rules let through: delivered, i.e. written to the
-- list, or rejected or unknown), with the outcomes the team recorded (the optional
-- `call_outcomes` source) and whether the customer came back.
--
-- A call is dated like any contact (campaign_results): the ledger's sent_at, at the latest
-- the end of its night's day (its as_of). An outcome belongs to the customer's latest call
-- dated at or before it (ties: the later campaign name); outcomes before the customer's
-- first call belong to none. A call may have several outcomes (not reached twice, reached
-- on the third try): reached is whether any outcome says reached (NULL: no outcome
-- recorded yet), attempts counts them, outcome is the latest one's, remedy the latest
-- remedy given, reached_ts the first reached attempt.
--
-- What counts as a contact: every call on the list, reached or not, as a delivered e-mail
-- counts opened or not (campaign_results, channel = the call channel): the holdout cannot
-- be "reached", so counting only reached calls would compare the customers who picked up
-- with everyone. came_back: a purchase within $attribution_days after the call (after the
-- call is dated, the same window as campaign_results, without its last touch: a customer
-- messaged after the call still counts here); revenue sums them, net.

with calls as (
    select
        campaign,
        step,
        channel,
        customer_id,
        entry_date,
        as_of,
        state,
        coalesce(treatment, 'unknown') as treatment,
        coalesce(segment, 'unknown') as segment,
        least(
            date_part('epoch', coalesce(sent_at, created_at)),
            date_part('epoch', cast(as_of as timestamp)) + 86400
        ) as call_epoch
    from sends
    where medium = 'call' and state in ('delivered', 'rejected', 'unknown')
),

outcomes as (
    select
        cast(customer_id as varchar) as customer_id,
        cast(ts as timestamp) as ts,
        date_part('epoch', cast(ts as timestamp)) as ts_epoch,
        cast(reached as boolean) as reached,
        cast(outcome as varchar) as outcome,
        nullif(trim(cast(remedy as varchar)), '') as remedy
    from call_outcomes
    where customer_id is not null and ts is not null
),

-- Each outcome with the call it belongs to: the latest call dated at or before it.
matched as (
    select *
    from (
        select
            o.*,
            c.campaign,
            c.step,
            c.entry_date,
            row_number() over (
                partition by o.customer_id, o.ts, o.outcome
                order by c.call_epoch desc, c.campaign desc, c.step desc
            ) as call_rank
        from outcomes o
        join calls c
            on c.customer_id = o.customer_id
            and c.call_epoch <= o.ts_epoch
    ) ranked
    where call_rank = 1
),

-- The latest outcome of each call, and its latest remedy given.
ranked_outcomes as (
    select
        *,
        row_number() over (
            partition by campaign, step, customer_id, entry_date
            order by ts desc, outcome desc
        ) as latest_rank,
        row_number() over (
            partition by campaign, step, customer_id, entry_date
            order by case when remedy is null then 1 else 0 end, ts desc, remedy desc
        ) as remedy_rank
    from matched
),

per_call as (
    select
        campaign,
        step,
        customer_id,
        entry_date,
        bool_or(reached) as reached,
        count(*) as attempts,
        min(case when reached then ts end) as reached_ts,
        max(case when latest_rank = 1 then outcome end) as outcome,
        max(case when remedy_rank = 1 then remedy end) as remedy
    from ranked_outcomes
    group by campaign, step, customer_id, entry_date
),

came_back as (
    select
        c.campaign, c.step, c.customer_id, c.entry_date,
        count(p.order_ts) > 0 as came_back,
        coalesce(money_sum(p.net_amount), 0.0) as revenue
    from calls c
    left join purchases_clean p
        on p.customer_id = c.customer_id
        and date_part('epoch', p.order_ts) > c.call_epoch
        and date_part('epoch', p.order_ts) <= c.call_epoch + $attribution_days * 86400
    group by c.campaign, c.step, c.customer_id, c.entry_date
)

select
    c.campaign,
    c.step,
    c.channel,
    c.customer_id,
    c.entry_date,
    c.as_of as called_on,
    c.state,
    c.treatment,
    c.segment,
    coalesce(pc.attempts, 0) as attempts,
    pc.reached,
    pc.reached_ts,
    pc.outcome,
    pc.remedy,
    b.came_back,
    b.revenue
from calls c
left join per_call pc
    on pc.campaign = c.campaign and pc.step = c.step
    and pc.customer_id = c.customer_id and pc.entry_date = c.entry_date
join came_back b
    on b.campaign = c.campaign and b.step = c.step
    and b.customer_id = c.customer_id and b.entry_date = c.entry_date
