-- campaign_funnel: what became of the customers each campaign picked, one contact night at a
-- time. One row per campaign and contact_night; every count is of lapses (a customer and
-- the lapse's entry_date, its alert date, as the ledger keeps it), each lapse of a campaign
-- counted once, so picked, sent and came back are the same customers from one end of the
-- funnel to the other. `sends` is the ledger as it stood before as_of (so a backfill gives
-- the funnel of then); a provider's later word on a message (a hard bounce reported to
-- `winback listen`) is the ledger's provider_status, as the state database holds it now (a
-- backfill sees bounces reported after its as_of too).
--
-- contact_night: the night (the run's as_of) of the lapse's first decision in the
--   campaign: its first ledger row (step 1, or the night a deferred step 1 finally went).
-- picked: every lapse the campaign decided about that night, in both arms, messaged or
--   not; a lapse another campaign owned (reason lower_priority) is not the campaign's.
-- held_out: of those, the holdout: kept back at random, never messaged.
-- suppressed: the treated lapses whose first step the rules stopped (no consent,
--   unsubscribed, a missing or invalid address, a bounce, the budget ...). The rest of the
--   treated (picked - held_out - suppressed - sent) are still waiting: deferred by the
--   frequency cap or quiet hours, or failed to send.
-- sent: the lapses with a message the rules let through, at any step: delivered, refused
--   by the provider, or whose answer was lost.
-- delivered: of those, the lapses with a message the provider accepted.
-- bounced: of those, the lapses with an accepted message the provider reported afterwards
--   as a hard bounce (it needs `winback listen`).
-- window_complete: the contacted lapses, both arms (sent or held out), whose attribution
--   window from their first contact has fully elapsed by as_of: nothing can change their
--   came_back any more. A contact is dated as campaign_results dates it: by when it was
--   sent (a holdout one by when the run decided it), at the latest the end of its night.
--   The window is complete when contact + $attribution_days is at or before the start of
--   as_of.
-- came_back: the sent lapses with a purchase after their first contact and within
--   $attribution_days of it (so far, while the window runs).
-- holdout_came_back: the same for the held-out lapses, from the holdout decision.
--
-- Unlike campaign_results' headline this is not like with like, nor last touch: a
-- purchase counts for every campaign whose window it falls in, and every held-out lapse
-- counts, also one the rules would not have messaged. It tells what happened to the
-- customers picked; whether the messages made the difference is campaign_results' answer.

with ledger as (
    select
        campaign,
        step,
        customer_id,
        entry_date,
        state,
        provider_status,
        as_of,
        least(
            date_part('epoch', coalesce(sent_at, created_at)),
            date_part('epoch', cast(as_of as timestamp)) + 86400
        ) as contact_epoch
    from sends
    where coalesce(reason, '') <> 'lower_priority'
),

-- The first step each lapse reached, for `suppressed`.
first_steps as (
    select campaign, customer_id, entry_date, min(step) as first_step
    from ledger
    group by campaign, customer_id, entry_date
),

lapses as (
    select
        l.campaign,
        l.customer_id,
        l.entry_date,
        min(l.as_of) as contact_night,
        bool_or(l.state = 'holdout') as held_out,
        bool_or(l.step = f.first_step and l.state = 'suppressed') as suppressed,
        bool_or(l.state in ('delivered', 'rejected', 'unknown')) as sent,
        bool_or(l.state = 'delivered') as delivered,
        bool_or(l.state = 'delivered' and l.provider_status = 'bounced') as bounced,
        min(case when l.state in ('delivered', 'rejected', 'unknown', 'holdout')
            then l.contact_epoch end) as contact_epoch
    from ledger l
    join first_steps f
        on f.campaign = l.campaign
        and f.customer_id = l.customer_id
        and f.entry_date = l.entry_date
    group by l.campaign, l.customer_id, l.entry_date
),

purchases as (
    select customer_id, date_part('epoch', order_ts) as order_epoch
    from purchases_clean
    where customer_id in (select customer_id from ledger)
),

outcomes as (
    select
        a.campaign,
        a.customer_id,
        a.entry_date,
        a.contact_night,
        a.held_out,
        a.suppressed,
        a.sent,
        a.delivered,
        a.bounced,
        a.contact_epoch is not null
            and a.contact_epoch + $attribution_days * 86400 <= date_part('epoch', $as_of_ts)
            as window_complete,
        count(p.order_epoch) > 0 as came_back
    from lapses a
    left join purchases p
        on p.customer_id = a.customer_id
        and p.order_epoch > a.contact_epoch
        and p.order_epoch <= a.contact_epoch + $attribution_days * 86400
    group by a.campaign, a.customer_id, a.entry_date, a.contact_night, a.held_out,
        a.suppressed, a.sent, a.delivered, a.bounced, a.contact_epoch
)

select
    campaign,
    contact_night,
    count(*) as picked,
    sum(case when held_out then 1 else 0 end) as held_out,
    sum(case when suppressed and not held_out then 1 else 0 end) as suppressed,
    sum(case when sent and not held_out then 1 else 0 end) as sent,
    sum(case when delivered and not held_out then 1 else 0 end) as delivered,
    sum(case when bounced and not held_out then 1 else 0 end) as bounced,
    sum(case when window_complete and (sent or held_out) then 1 else 0 end) as window_complete,
    sum(case when came_back and sent and not held_out then 1 else 0 end) as came_back,
    sum(case when came_back and held_out then 1 else 0 end) as holdout_came_back
from outcomes
group by campaign, contact_night
