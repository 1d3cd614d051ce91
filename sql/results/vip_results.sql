-- vip_results: do recognised customers lapse less? The thank-you campaigns (ledger rows
-- whose treatment is 'recognition': vip_recognition) against their holdout, one row per
-- campaign and window_complete.
--
-- A turn is one (customer, entry_date) of the campaign: recognised when its thank-you was
-- let through by the rules (delivered, or refused by the provider, or its answer lost: as
-- campaign_results counts contacts), held out when the holdout decided it. Like with like:
-- a holdout customer the rules would have stopped (no consent, unsubscribed, a missing or
-- invalid address; a deferral only delays) is left out, as the stopped recognised ones
-- are. The turn's day is when the message was sent (or the holdout decided), at the latest
-- its night (as_of), as in reactivated_customers.
--
-- Lapsed: the customer lapsed within $vip_results_days after the turn's day, by the rule
-- of lapse_alerts with the customer's rhythm as measured tonight (customer_rhythm): some
-- purchase day followed by a silence of at least alert_after_days (to the next purchase
-- day, or to as_of), whose alert day (purchase day + alert_after_days) falls after the
-- turn's day and within $vip_results_days of it. Customers without a rhythm are left out
-- of both arms. A turn whose $vip_results_days have not all elapsed by as_of is counted in
-- the rows with window_complete = false ("in progress", lapses so far), never in the
-- finished ones.
--
-- difference = lapse_rate - holdout_lapse_rate (below 0: recognised customers lapse
-- less), with Newcombe's 95% interval (uplift_low, uplift_high, as campaign_results);
-- with fewer than $results_min_group customers in an arm or fewer than
-- $results_min_events lapses in all, the interval is NULL and note = 'too few to tell'.
with turns as (
    select
        campaign,
        customer_id,
        entry_date,
        state = 'holdout' as is_holdout,
        would_be_suppressed,
        case
            when date_part('epoch', coalesce(sent_at, created_at))
                < date_part('epoch', cast(as_of as timestamp)) + 86400
                then arrow_cast(cast(coalesce(sent_at, created_at) as date), 'Int32')
            else arrow_cast(as_of, 'Int32')
        end as turn_day
    from sends
    where treatment = 'recognition'
        and state in ('delivered', 'rejected', 'unknown', 'holdout')
),

-- Each turn once, like with like.
eligible as (
    select campaign, customer_id, entry_date, is_holdout, min(turn_day) as turn_day
    from turns
    where not is_holdout
        or would_be_suppressed is null
        or would_be_suppressed in ('frequency_cap', 'quiet_hours')
    group by campaign, customer_id, entry_date, is_holdout
),

-- Each purchase day with the next one (NULL: none yet).
purchase_gaps as (
    select
        customer_id,
        arrow_cast(order_date, 'Int32') as day,
        lead(arrow_cast(order_date, 'Int32')) over (
            partition by customer_id order by order_date
        ) as next_day
    from purchase_days
    where customer_id in (select customer_id from turns)
),

-- The days a lapse alert rang: a silence of at least alert_after_days after a purchase day.
alerts as (
    select g.customer_id, g.day + cast(h.alert_after_days as int) as alert_day
    from purchase_gaps g
    join customer_rhythm h on h.customer_id = g.customer_id
    where coalesce(g.next_day, arrow_cast($as_of, 'Int32')) - g.day >= h.alert_after_days
),

outcomes as (
    select
        e.campaign,
        e.is_holdout,
        e.turn_day,
        e.turn_day + cast($vip_results_days as int) <= arrow_cast($as_of, 'Int32')
            as window_complete,
        count(a.alert_day) > 0 as lapsed
    from eligible e
    join customer_rhythm h on h.customer_id = e.customer_id
    left join alerts a
        on a.customer_id = e.customer_id
        and a.alert_day > e.turn_day
        and a.alert_day <= e.turn_day + cast($vip_results_days as int)
    group by e.campaign, e.customer_id, e.entry_date, e.is_holdout, e.turn_day
),

counts as (
    select
        campaign,
        window_complete,
        sum(case when not is_holdout then 1 else 0 end) as recognised,
        sum(case when is_holdout then 1 else 0 end) as holdout,
        sum(case when not is_holdout and lapsed then 1 else 0 end) as lapsed,
        sum(case when is_holdout and lapsed then 1 else 0 end) as holdout_lapsed,
        arrow_cast(min(turn_day), 'Date32') as first_turn,
        arrow_cast(max(turn_day), 'Date32') as last_turn
    from outcomes
    group by campaign, window_complete
),

rates as (
    select
        *,
        cast(lapsed as double) / nullif(recognised, 0) as lapse_rate,
        cast(holdout_lapsed as double) / nullif(holdout, 0) as holdout_lapse_rate,
        case
            when not window_complete then 'in progress'
            when recognised < $results_min_group or holdout < $results_min_group
                or lapsed + holdout_lapsed < $results_min_events
                then 'too few to tell'
        end as note
    from counts
)

select
    campaign,
    window_complete,
    first_turn,
    last_turn,
    recognised,
    holdout,
    lapsed,
    holdout_lapsed,
    lapse_rate,
    holdout_lapse_rate,
    lapse_rate - holdout_lapse_rate as difference,
    case when note is null
        then uplift_low(lapsed, recognised, holdout_lapsed, holdout) end as ci_low,
    case when note is null
        then uplift_high(lapsed, recognised, holdout_lapsed, holdout) end as ci_high,
    note
from rates
