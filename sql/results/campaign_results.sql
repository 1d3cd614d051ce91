-- campaign_results: who came back after a win-back message, against the holdout.
--
-- One row per campaign, step, channel, treatment, RFM segment and window_complete, and the
-- same with treatment = segment = 'all' (step = 0, channel = 'all': the whole campaign,
-- each lapse of a customer once, from its first contact). Treatment, segment and the
-- predicted value (the campaign's value column, SLTV) are as the audience said at
-- decision time. `sends` is the ledger as it stood before as_of, so a backfill gives the
-- results of then.
--
-- Contacts. A contact is a message the rules let through (delivered, or refused by the
-- provider, or whose answer was lost), dated by when it was sent (the ledger's sent_at);
-- a holdout contact is dated by when the run decided it; at the latest the end of the
-- night's day (its as_of), so a replayed, backfilled or demo run that ran later is dated as
-- if it had run on its night (the same rule as reactivated_customers). A purchase counts
-- only after that moment and within $attribution_days, so one made between midnight and
-- the send never does.
--
-- Like with like (per protocol, the headline). The holdout faced the same rules as the
-- treated arm (the ledger's would_be_suppressed): a holdout customer the rules would not
-- have messaged (no consent, unsubscribed, a missing or invalid address) is left out, as
-- the treated customers the rules stopped are. A deferral (frequency cap, quiet hours)
-- only delays a message, so it does not leave a holdout customer out. A step after the
-- first compares the customers who reached it in each arm: a holdout customer counts at
-- step k when no step up to k would have been stopped. The intention-to-treat
-- comparison (itt_*, whole campaign only) counts everyone assigned to each arm, messaged
-- or not.
--
-- Last touch. When contacts of several campaigns (or lapses) precede a purchase within
-- their windows, the purchase is credited to the latest of them only, so totals across
-- campaigns never count it twice.
--
-- Windows. A contact whose window has not fully elapsed by as_of (contact +
-- $attribution_days after the start of as_of) is counted in the rows with
-- window_complete = false ("in progress"), never in the finished ones.
--
-- Uplift is the difference of the two groups' rates with Newcombe's hybrid score 95%
-- interval (uplift_low, uplift_high); with fewer than $results_min_group customers in an
-- arm or fewer than $results_min_events comebacks in all, the interval is NULL and
-- note = 'too few to tell'. holdout_needed is the holdout (equal groups) that 80% power
-- needs to detect the observed difference in a 5% two-sided test, where the holdout is
-- smaller. Money is summed with money_sum(), exactly, so the figures do not depend on the
-- order rows arrive in.
--
-- Economics. cost is what the ledger recorded for the contacted arm's messages: each
-- channel's cost_per_message plus the step's offer_cost (the expected cost of its
-- discount), the figures budgets count. incremental_revenue = revenue - holdout_revenue x
-- contacted / holdout (what the contacted would have spent anyway, scaled from the
-- holdout); incremental_margin = incremental_revenue x $margin; roi = (incremental_margin
-- - cost) / cost.

with ledger as (
    select
        campaign,
        step,
        channel,
        customer_id,
        entry_date,
        state,
        reason,
        would_be_suppressed,
        state = 'holdout' as is_holdout,
        cost,
        coalesce(treatment, 'unknown') as treatment,
        coalesce(segment, 'unknown') as segment,
        coalesce(value, 0.0) as predicted_value,
        least(
            date_part('epoch', coalesce(sent_at, created_at)),
            date_part('epoch', cast(as_of as timestamp)) + 86400
        ) as contact_epoch
    from sends
    -- Recognition (vip_recognition) is not a win-back: vip_results measures it.
    where treatment is distinct from 'recognition'
),

-- The contacts: messages the rules let through, and the holdout's would-be contacts.
touches as (
    select
        *,
        -- A holdout customer the rules would have stopped at this step or an earlier one.
        max(case when would_be_suppressed is not null
                and would_be_suppressed not in ('frequency_cap', 'quiet_hours') then 1 else 0 end)
            over (partition by campaign, customer_id, entry_date order by step
                  rows between unbounded preceding and current row) = 0 as eligible
    from ledger
    where state in ('delivered', 'rejected', 'unknown', 'holdout')
),

purchases as (
    select
        customer_id,
        row_number() over (partition by customer_id order by order_ts, order_id, net_amount)
            as purchase_no,
        date_part('epoch', order_ts) as order_epoch,
        net_amount
    from purchases_clean
    where customer_id in (select customer_id from ledger)
),

-- Each purchase, credited to the latest contact before it whose window it falls in.
credited as (
    select customer_id, purchase_no, order_epoch, net_amount, campaign, entry_date
    from (
        select
            p.customer_id, p.purchase_no, p.order_epoch, p.net_amount, t.campaign, t.entry_date,
            row_number() over (partition by p.customer_id, p.purchase_no
                               order by t.contact_epoch desc, t.campaign desc, t.entry_date desc,
                                   t.step desc)
                as touch_rank
        from purchases p
        join touches t
            on t.customer_id = p.customer_id
            and p.order_epoch > t.contact_epoch
            and p.order_epoch <= t.contact_epoch + $attribution_days * 86400
    ) ranked
    where touch_rank = 1
),

-- Each step on its own: did a purchase credited to this lapse follow this contact?
step_contacts as (
    select
        campaign, step, channel, customer_id, entry_date, is_holdout, cost, treatment,
        segment, predicted_value, contact_epoch
    from touches
    where eligible
),

-- The whole campaign: each lapse of a customer once, from its first contact, with every
-- step's cost. A holdout lapse counts when its first step would have been sent.
lapse_contacts as (
    select
        campaign,
        cast(0 as bigint) as step,
        'all' as channel,
        customer_id,
        entry_date,
        is_holdout,
        money_sum(cost) as cost,
        max(treatment) as treatment,
        max(segment) as segment,
        max(predicted_value) as predicted_value,
        min(contact_epoch) as contact_epoch
    from touches
    group by campaign, customer_id, entry_date, is_holdout
    -- eligible only turns false: at the first step it is the lapse's bool_or.
    having bool_or(eligible) or not is_holdout
),

outcomes as (
    select
        c.campaign, c.step, c.channel, c.customer_id, c.entry_date, c.is_holdout, c.cost,
        c.treatment, c.segment, c.predicted_value,
        c.contact_epoch + $attribution_days * 86400 <= date_part('epoch', $as_of_ts)
            as window_complete,
        count(p.order_epoch) > 0 as reactivated,
        coalesce(money_sum(p.net_amount), 0.0) as revenue
    from (select * from step_contacts union all select * from lapse_contacts) c
    left join credited p
        on p.customer_id = c.customer_id
        and p.campaign = c.campaign
        and p.entry_date = c.entry_date
        and p.order_epoch > c.contact_epoch
        and p.order_epoch <= c.contact_epoch + $attribution_days * 86400
    group by c.campaign, c.step, c.channel, c.customer_id, c.entry_date, c.is_holdout,
        c.cost, c.treatment, c.segment, c.predicted_value, c.contact_epoch
),

-- Intention to treat: every lapse assigned to an arm (all but those another campaign
-- owned tonight), from its first decision, messaged or not.
itt_lapses as (
    select
        campaign,
        customer_id,
        entry_date,
        bool_or(is_holdout) as is_holdout,
        max(treatment) as treatment,
        max(segment) as segment,
        min(contact_epoch) as contact_epoch
    from ledger
    where coalesce(reason, '') <> 'lower_priority'
    group by campaign, customer_id, entry_date
),

-- Each purchase with the lapse it is credited to, if any.
purchase_credits as (
    select
        p.customer_id, p.order_epoch, c.campaign as credited_campaign,
        c.entry_date as credited_entry
    from purchases p
    left join credited c
        on c.customer_id = p.customer_id and c.purchase_no = p.purchase_no
),

-- A purchase counts for an assigned lapse unless it is credited to another one.
itt_outcomes as (
    select
        a.campaign, a.is_holdout, a.treatment, a.segment,
        a.contact_epoch + $attribution_days * 86400 <= date_part('epoch', $as_of_ts)
            as window_complete,
        count(p.order_epoch) > 0 as reactivated
    from itt_lapses a
    left join purchase_credits p
        on p.customer_id = a.customer_id
        and p.order_epoch > a.contact_epoch
        and p.order_epoch <= a.contact_epoch + $attribution_days * 86400
        and (p.credited_campaign is null
            or (p.credited_campaign = a.campaign and p.credited_entry = a.entry_date))
    group by a.campaign, a.customer_id, a.entry_date, a.is_holdout, a.treatment, a.segment,
        a.contact_epoch
),

-- Each outcome counts in its own treatment and segment, and in the total of all.
scopes as (
    select all_groups from (values (true), (false)) as scope(all_groups)
),

counts as (
    select
        o.campaign,
        o.step,
        o.channel,
        case when s.all_groups then 'all' else o.treatment end as treatment,
        case when s.all_groups then 'all' else o.segment end as segment,
        o.window_complete,
        sum(case when not o.is_holdout then 1 else 0 end) as contacted,
        sum(case when o.is_holdout then 1 else 0 end) as holdout,
        sum(case when not o.is_holdout and o.reactivated then 1 else 0 end) as reactivated,
        sum(case when o.is_holdout and o.reactivated then 1 else 0 end) as holdout_reactivated,
        money_sum(case when not o.is_holdout then o.revenue else 0.0 end) as revenue,
        money_sum(case when o.is_holdout then o.revenue else 0.0 end) as holdout_revenue,
        money_sum(case when not o.is_holdout then o.cost else 0.0 end) as cost,
        money_sum(case when not o.is_holdout then o.predicted_value else 0.0 end)
            as predicted_value
    from outcomes o
    cross join scopes s
    group by 1, 2, 3, 4, 5, 6
),

itt_counts as (
    select
        o.campaign,
        case when s.all_groups then 'all' else o.treatment end as treatment,
        case when s.all_groups then 'all' else o.segment end as segment,
        o.window_complete,
        sum(case when not o.is_holdout then 1 else 0 end) as itt_contacted,
        sum(case when o.is_holdout then 1 else 0 end) as itt_holdout,
        sum(case when not o.is_holdout and o.reactivated then 1 else 0 end) as itt_reactivated,
        sum(case when o.is_holdout and o.reactivated then 1 else 0 end)
            as itt_holdout_reactivated
    from itt_outcomes o
    cross join scopes s
    group by 1, 2, 3, 4
),

rates as (
    select
        c.*,
        i.itt_contacted,
        i.itt_holdout,
        i.itt_reactivated,
        i.itt_holdout_reactivated,
        cast(c.reactivated as double) / nullif(c.contacted, 0) as rate,
        cast(c.holdout_reactivated as double) / nullif(c.holdout, 0) as holdout_rate,
        case
            when not c.window_complete then 'in progress'
            when c.contacted < $results_min_group or c.holdout < $results_min_group
                or c.reactivated + c.holdout_reactivated < $results_min_events
                then 'too few to tell'
        end as note,
        case
            when not c.window_complete then 'in progress'
            when i.itt_contacted < $results_min_group or i.itt_holdout < $results_min_group
                or i.itt_reactivated + i.itt_holdout_reactivated < $results_min_events
                then 'too few to tell'
        end as itt_note
    from counts c
    left join itt_counts i
        on c.step = 0
        and i.campaign = c.campaign
        and i.treatment = c.treatment
        and i.segment = c.segment
        and i.window_complete = c.window_complete
),

final as (
    select
        campaign,
        step,
        channel,
        treatment,
        segment,
        window_complete,
        contacted,
        holdout,
        reactivated,
        holdout_reactivated,
        rate,
        holdout_rate,
        rate - holdout_rate as incremental_rate,
        case when note is null
            then uplift_low(reactivated, contacted, holdout_reactivated, holdout) end as ci_low,
        case when note is null
            then uplift_high(reactivated, contacted, holdout_reactivated, holdout) end as ci_high,
        note,
        case when window_complete and holdout < holdout_needed(rate, holdout_rate)
            then holdout_needed(rate, holdout_rate) end as holdout_needed,
        itt_contacted,
        itt_holdout,
        itt_reactivated,
        itt_holdout_reactivated,
        cast(itt_reactivated as double) / nullif(itt_contacted, 0)
            - cast(itt_holdout_reactivated as double) / nullif(itt_holdout, 0)
            as itt_incremental_rate,
        case when itt_note is null then
            uplift_low(itt_reactivated, itt_contacted, itt_holdout_reactivated, itt_holdout)
        end as itt_ci_low,
        case when itt_note is null then
            uplift_high(itt_reactivated, itt_contacted, itt_holdout_reactivated, itt_holdout)
        end as itt_ci_high,
        revenue,
        holdout_revenue,
        cost,
        revenue - holdout_revenue * contacted / nullif(holdout, 0) as incremental_revenue,
        (revenue - holdout_revenue * contacted / nullif(holdout, 0)) * $margin
            as incremental_margin,
        ((revenue - holdout_revenue * contacted / nullif(holdout, 0)) * $margin - cost)
            / nullif(cost, 0) as roi,
        predicted_value,
        revenue / nullif(predicted_value, 0) as realised_vs_predicted
    from rates
)

select * from final
