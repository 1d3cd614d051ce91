-- reactivated_customers: do the won-back stay? One row per win-back: a lapse (a customer
-- and the lapse's entry_date, its alert date, as the ledger keeps it) that ended with a
-- purchase within $attribution_days after a contact.
--
-- A lapse with a delivered message (any campaign, any step) is `won_back` when one of its
-- purchases falls within $attribution_days after a delivered message; a lapse with only
-- holdout rows (held out, never messaged) is `natural` when a purchase falls within
-- $attribution_days after the holdout decision: the customers who came back by themselves,
-- the comparison the won-back are judged against. A contact is timed by the ledger's
-- `sent_at`, or, for a holdout row, by `created_at` (when the run decided it), at the
-- latest the end of the night's day (its as_of): a replayed, backfilled or demo run that
-- ran later is dated as if it had run on its night. Purchases are compared by their
-- timestamp, so a purchase before the message never counts.
--
-- The return is the first such purchase (its day: return_date); the row names the contact it
-- followed most recently (campaign, treatment and segment as decided then). Revenue 90 and
-- 180 days after the return counts the orders of the return day and the 89 (179) days
-- after it, net of refunds; it is NULL until that window has fully elapsed by $as_of.
-- purchases_since counts the purchase days after the return day. relapsed: the customer
-- lapsed again after the return by the same rule as lapse_alerts (a silence of at least
-- alert_after_days, the customer's rhythm as measured tonight, between two purchase days
-- from the return on, or from the last purchase up to $as_of); relapse_date is the first
-- such alert day. Both NULL for a customer without a rhythm.
-- `sends` is the ledger as it stood before as_of, so a backfill gives the figures of then.

with ledger as (
    select
        customer_id,
        entry_date,
        campaign,
        state,
        coalesce(treatment, 'unknown') as treatment,
        coalesce(segment, 'unknown') as segment,
        coalesce(sent_at, created_at) as decided_ts,
        date_part('epoch', coalesce(sent_at, created_at)) as decided_epoch,
        as_of,
        date_part('epoch', cast(as_of as timestamp)) + 86400 as night_end_epoch
    from sends
    where state in ('delivered', 'holdout')
        -- Recognition (vip_recognition) is not a win-back: vip_results measures it.
        and treatment is distinct from 'recognition'
),

-- A lapse with any delivered message is contacted; otherwise it is in the holdout.
entries as (
    select customer_id, entry_date, bool_or(state = 'delivered') as contacted
    from ledger
    group by customer_id, entry_date
),

contacts as (
    select
        l.customer_id,
        l.entry_date,
        l.campaign,
        l.treatment,
        l.segment,
        least(l.decided_epoch, l.night_end_epoch) as contact_epoch,
        case when l.decided_epoch < l.night_end_epoch then cast(l.decided_ts as date) else l.as_of end as contact_date,
        case when e.contacted then 'won_back' else 'natural' end as return_kind
    from ledger l
    join entries e on e.customer_id = l.customer_id and e.entry_date = l.entry_date
    where l.state = case when e.contacted then 'delivered' else 'holdout' end
),

purchases as (
    select
        customer_id,
        order_id,
        order_date,
        arrow_cast(order_date, 'Int32') as day,
        date_part('epoch', order_ts) as order_epoch,
        net_amount,
        -- a purchase: anything but a pure refund (as purchase_days counts them)
        gross_amount > 0 or refund_amount = 0 as is_purchase
    from purchases_clean
    where customer_id in (select customer_id from ledger)
),

-- Every purchase inside a contact's window; the first purchase (and of the contacts it
-- followed, the latest) is the return.
in_window as (
    select
        c.*,
        p.order_date as return_date,
        p.day as return_day,
        row_number() over (
            partition by c.customer_id, c.entry_date
            order by p.order_epoch, p.order_id, c.contact_epoch desc, c.campaign
        ) as nth
    from contacts c
    join purchases p
        on p.customer_id = c.customer_id
        and p.is_purchase
        and p.order_epoch > c.contact_epoch
        and p.order_epoch <= c.contact_epoch + $attribution_days * 86400
),

returns as (
    select * from in_window where nth = 1
),

-- Net revenue from the return day on, in the two windows (exact sums: money_sum).
revenue as (
    select
        r.customer_id,
        r.entry_date,
        coalesce(money_sum(p.net_amount) filter (where p.day < r.return_day + 90), 0.0) as revenue_90d,
        coalesce(money_sum(p.net_amount) filter (where p.day < r.return_day + 180), 0.0) as revenue_180d
    from returns r
    join purchases p on p.customer_id = r.customer_id and p.day >= r.return_day
    group by r.customer_id, r.entry_date
),

-- The purchase days from the return day on, each with the next one (NULL: none yet).
later_days as (
    select
        r.customer_id,
        r.entry_date,
        r.return_day,
        arrow_cast(d.order_date, 'Int32') as day,
        lead(arrow_cast(d.order_date, 'Int32')) over (
            partition by r.customer_id, r.entry_date order by d.order_date
        ) as next_day
    from returns r
    join purchase_days d
        on d.customer_id = r.customer_id
        and arrow_cast(d.order_date, 'Int32') >= r.return_day
),

-- A silence of at least alert_after_days after a purchase day: between two of them, or
-- from the last one up to as_of.
relapses as (
    select
        l.customer_id,
        l.entry_date,
        count(*) filter (where l.day > l.return_day) as purchases_since,
        min(l.day + cast(h.alert_after_days as int)) filter (
            where coalesce(l.next_day, arrow_cast($as_of, 'Int32')) - l.day >= h.alert_after_days
        ) as relapse_day,
        max(h.alert_after_days) as alert_after_days
    from later_days l
    left join customer_rhythm h on h.customer_id = l.customer_id
    group by l.customer_id, l.entry_date
),

final as (
    select
        r.customer_id,
        r.entry_date,
        r.return_kind,
        r.campaign,
        r.treatment,
        r.segment,
        r.contact_date,
        r.return_date,
        case when r.return_day + 90 <= arrow_cast($as_of, 'Int32') then v.revenue_90d end as revenue_90d,
        case when r.return_day + 180 <= arrow_cast($as_of, 'Int32') then v.revenue_180d end as revenue_180d,
        coalesce(x.purchases_since, 0) as purchases_since,
        case when x.alert_after_days is not null then x.relapse_day is not null end as relapsed,
        arrow_cast(x.relapse_day, 'Date32') as relapse_date
    from returns r
    left join revenue v on v.customer_id = r.customer_id and v.entry_date = r.entry_date
    left join relapses x on x.customer_id = r.customer_id and x.entry_date = r.entry_date
)

select * from final
