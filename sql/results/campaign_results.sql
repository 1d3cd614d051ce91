-- campaign_results: who came back after a win-back message, against the holdout.
--
-- One row per campaign, step, channel, treatment and RFM segment, and the same with
-- treatment = segment = 'all' (step = 0, channel = 'all': the whole campaign, each
-- customer once, from their first contact). Treatment, segment and the predicted value
-- (the campaign's value column, SLTV) are as the audience said at decision time. A contact is a delivered message; a
-- holdout customer's contact is when they *would* have been messaged. A contacted customer
-- is reactivated by a purchase after the contact and within $attribution_days; a purchase
-- before the contact is never attributed. Uplift is the difference of the two groups'
-- reactivation rates with a 95% Wald interval for a difference of proportions. `contacted`
-- counts messages the provider accepted (the ledger's `delivered`); `bounced` how many of
-- those the provider later reported bounced (`provider_status`, from `winback listen`).
-- `sends` is the ledger as it stood before as_of, so a backfill gives the results of then.
-- A contact is dated by the night it was decided for (its as_of, from midnight): the same
-- whatever hour the run actually sent it, so results are reproducible and a replayed or
-- late run is judged like a nightly one. Money is summed with money_sum(), exactly (as
-- decimal(38, 6)), so the figures do not depend on the order rows arrive in (a float sum
-- does, in its last bits).

with contacts as (
    select
        campaign,
        step,
        channel,
        customer_id,
        state = 'holdout' as is_holdout,
        cost,
        coalesce(provider_status = 'bounced', false) as bounced,
        coalesce(treatment, 'unknown') as treatment,
        coalesce(segment, 'unknown') as segment,
        coalesce(value, 0.0) as predicted_value,
        date_part('epoch', cast(as_of as timestamp)) as contact_epoch
    from sends
    where state in ('delivered', 'holdout')
),

purchases as (
    select customer_id, date_part('epoch', order_ts) as order_epoch, net_amount
    from purchases_clean
),

-- Each step on its own: did a purchase follow this contact?
step_outcomes as (
    select
        c.campaign,
        c.step,
        c.channel,
        c.customer_id,
        c.is_holdout,
        c.cost,
        c.bounced,
        c.treatment,
        c.segment,
        c.predicted_value,
        count(p.order_epoch) > 0 as reactivated,
        coalesce(money_sum(p.net_amount), 0.0) as revenue
    from contacts c
    left join purchases p
        on p.customer_id = c.customer_id
        and p.order_epoch > c.contact_epoch
        and p.order_epoch <= c.contact_epoch + $attribution_days * 86400
    group by c.campaign, c.step, c.channel, c.customer_id, c.is_holdout, c.cost, c.bounced,
        c.treatment, c.segment, c.predicted_value
),

-- The whole campaign: a customer once, from the first contact, with every step's cost.
first_contacts as (
    select
        campaign,
        customer_id,
        is_holdout,
        min(contact_epoch) as contact_epoch,
        money_sum(cost) as cost,
        bool_or(bounced) as bounced,
        max(treatment) as treatment,
        max(segment) as segment,
        max(predicted_value) as predicted_value
    from contacts
    group by campaign, customer_id, is_holdout
),

campaign_outcomes as (
    select
        f.campaign,
        cast(0 as bigint) as step,
        'all' as channel,
        f.customer_id,
        f.is_holdout,
        f.cost,
        f.bounced,
        f.treatment,
        f.segment,
        f.predicted_value,
        count(p.order_epoch) > 0 as reactivated,
        coalesce(money_sum(p.net_amount), 0.0) as revenue
    from first_contacts f
    left join purchases p
        on p.customer_id = f.customer_id
        and p.order_epoch > f.contact_epoch
        and p.order_epoch <= f.contact_epoch + $attribution_days * 86400
    group by f.campaign, f.customer_id, f.is_holdout, f.cost, f.bounced, f.treatment, f.segment,
        f.predicted_value
),

-- Each outcome counts in its own treatment and segment, and in the total of all.
outcomes as (
    select o.campaign, o.step, o.channel, o.customer_id, o.is_holdout, o.cost, o.bounced,
        case when scope.all_groups then 'all' else o.treatment end as treatment,
        case when scope.all_groups then 'all' else o.segment end as segment,
        o.predicted_value, o.reactivated, o.revenue
    from (select * from step_outcomes union all select * from campaign_outcomes) o
    cross join (values (true), (false)) as scope(all_groups)
),

counts as (
    select
        campaign,
        step,
        channel,
        treatment,
        segment,
        sum(case when not is_holdout then 1 else 0 end) as contacted,
        sum(case when not is_holdout and bounced then 1 else 0 end) as bounced,
        sum(case when is_holdout then 1 else 0 end) as holdout,
        sum(case when not is_holdout and reactivated then 1 else 0 end) as reactivated,
        sum(case when is_holdout and reactivated then 1 else 0 end) as holdout_reactivated,
        money_sum(case when not is_holdout then revenue else 0.0 end) as revenue,
        money_sum(case when is_holdout then revenue else 0.0 end) as holdout_revenue,
        money_sum(case when not is_holdout then cost else 0.0 end) as cost,
        money_sum(case when not is_holdout then predicted_value else 0.0 end) as predicted_value
    from outcomes
    group by campaign, step, channel, treatment, segment
),

rates as (
    select
        *,
        cast(reactivated as double) / nullif(contacted, 0) as rate,
        cast(holdout_reactivated as double) / nullif(holdout, 0) as holdout_rate
    from counts
),

final as (
    select
        campaign,
        step,
        channel,
        treatment,
        segment,
        contacted,
        bounced,
        holdout,
        reactivated,
        holdout_reactivated,
        rate,
        holdout_rate,
        rate - holdout_rate as incremental_rate,
        rate - holdout_rate
            - 1.96 * sqrt(rate * (1 - rate) / contacted + holdout_rate * (1 - holdout_rate) / holdout)
            as ci_low,
        rate - holdout_rate
            + 1.96 * sqrt(rate * (1 - rate) / contacted + holdout_rate * (1 - holdout_rate) / holdout)
            as ci_high,
        revenue,
        holdout_revenue,
        cost,
        revenue - holdout_revenue * contacted / nullif(holdout, 0) as incremental_revenue,
        (revenue - holdout_revenue * contacted / nullif(holdout, 0) - cost) / nullif(cost, 0) as roi,
        predicted_value,
        revenue / nullif(predicted_value, 0) as realised_vs_predicted
    from rates
)

select * from final
