-- vip_customers: the best customers, to recognise and reward (seed 001, step 6: reward the
-- best customers, recognise them personally; seed 004, 6.2: special service for the top
-- 10%). A VIP is an active customer (not in lapse_alerts tonight, not unprofitable) in
-- value grade A (the customers behind the first $grade_a_share of revenue) or in the top
-- $vip_top_clv_share of all customers by predicted lifetime value (ltv.clv; without a
-- fitted model, grade A alone decides). why says which: 'grade A', 'top CLV' or both.
--
-- Turns. A VIP has a turn of recognition every $vip_cooldown_days at most: the ledger
-- (`sends`, rows whose treatment is 'recognition': the vip_recognition audience tags them
-- so) records each turn as a delivered thank-you or a holdout decision (the holdout takes
-- its turn too, so both arms are measured on the same cycle; vip_results). last_turn is
-- the night of the latest; in_cooldown while as_of < last_turn + $vip_cooldown_days
-- (next_turn). Out of the cool-down, entry_date is the start of the customer's current
-- cool-down-long period: next_turn + k x $vip_cooldown_days, the latest at or before
-- as_of (never had a turn: periods counted from 1970-01-01). The campaign planner enters
-- a customer once per entry_date, so a customer the rules stopped (no consent, another
-- campaign first) is tried again one period later, a deferred one night after night
-- within the period, and the entry after a turn is always new. NULL in the cool-down.
with active as (
    select
        s.customer_id,
        s.first_purchase_date,
        s.last_purchase_date,
        s.orders,
        s.monetary_total
    from customer_summary s
    left join lapse_alerts l on l.customer_id = s.customer_id
    where l.customer_id is null
),

ranked as (
    select
        customer_id,
        clv,
        row_number() over (order by clv desc, customer_id) as clv_rank,
        count(*) over () as customers
    from ltv
    where clv is not null
),

turns as (
    select
        customer_id,
        count(distinct case when state = 'delivered' then entry_date end) as recognitions,
        arrow_cast(max(as_of), 'Int32') as last_turn_day
    from sends
    where treatment = 'recognition' and state in ('delivered', 'holdout')
    group by customer_id
),

vips as (
    select
        a.*,
        g.grade,
        r.clv,
        r.clv_rank,
        coalesce(r.clv_rank <= ceil($vip_top_clv_share * r.customers), false) as top_clv,
        coalesce(t.recognitions, 0) as recognitions,
        t.last_turn_day,
        t.last_turn_day + cast($vip_cooldown_days as int) as next_turn_day,
        arrow_cast($as_of, 'Int32') as today
    from active a
    join value_grade g on g.customer_id = a.customer_id
    left join ranked r on r.customer_id = a.customer_id
    left join turns t on t.customer_id = a.customer_id
    where not g.unprofitable
),

final as (
    select
        v.customer_id,
        v.grade,
        v.clv,
        v.clv_rank,
        v.top_clv,
        case
            when v.grade = 'A' and v.top_clv then 'grade A, top CLV'
            when v.grade = 'A' then 'grade A'
            else 'top CLV'
        end as why,
        coalesce(s.segment, 'unknown') as segment,
        v.first_purchase_date,
        v.last_purchase_date,
        v.orders,
        v.monetary_total,
        v.recognitions,
        arrow_cast(v.last_turn_day, 'Date32') as last_turn,
        arrow_cast(v.next_turn_day, 'Date32') as next_turn,
        coalesce(v.today < v.next_turn_day, false) as in_cooldown,
        case when not coalesce(v.today < v.next_turn_day, false) then arrow_cast(
            cast(
                v.today - (v.today - coalesce(v.next_turn_day, cast(0 as int)))
                    % cast($vip_cooldown_days as int)
                as int
            ),
            'Date32'
        ) end as entry_date
    from vips v
    left join rfm s on s.customer_id = v.customer_id
    where v.grade = 'A' or v.top_clv
)

select * from final
