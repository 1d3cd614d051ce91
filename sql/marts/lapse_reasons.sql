-- lapse_reasons: why each lapsed customer left, and whose reason it is (reason_owner, from
-- the editable seed reason_codes). A stated reason beats an inferred one (reason_source):
--   stated    the customer told us: the latest answer of the `feedback` source (a survey
--             answer, a reply read by the team) from complaint_window_days before the
--             last purchase up to the run (answers to the win-back messages come after
--             the lapse, so they count too), whose reason_code is in reason_codes. Ties on
--             the day: the latest time, then the code alphabetically.
--   inferred  otherwise: a complaint, service ticket, bad review, refund request or
--             refund in the window before the alert (from complaint_window_days before the
--             last purchase up to the alert date) points at the company (the newest one
--             is the reason); with none, no_company_signal: the customer's own reason.
-- The free text of an answer is never copied here (it may hold personal data): evidence
-- names the code and the channel it came through. Value x reason later decides the
-- treatment (sql/intermediate/treatment_matrix.sql).
with lapsed as (
    select * from lapse_alerts
),

codes as (
    select reason_code, owner from reason_codes
),

signals as (
    select customer_id, cast(ts as date) as signal_date, kind as signal, kind as detail
    from complaints
    union all
    select customer_id, cast(refund_ts as date), 'refund', 'refund of ' || cast(refund_amount as varchar) || coalesce(' on order ' || order_id, '')
    from purchases_clean
    where refund_amount > 0 and refund_ts is not null
),

evidence as (
    select
        l.customer_id,
        s.signal,
        s.signal_date,
        s.detail,
        row_number() over (partition by l.customer_id order by s.signal_date desc, s.signal, s.detail) as newest,
        count(*) over (partition by l.customer_id) as signals
    from lapsed l
    join signals s
        on s.customer_id = l.customer_id
        and s.signal_date <= l.alert_date
        and arrow_cast(s.signal_date, 'Int32')
            >= arrow_cast(l.last_purchase_date, 'Int32') - $complaint_window_days
),

stated as (
    select
        l.customer_id,
        f.reason_code,
        cast(f.ts as date) as answer_date,
        'stated: ' || f.reason_code || coalesce(' (' || f.channel || ')', '') as detail,
        row_number() over (partition by l.customer_id order by f.ts desc, f.reason_code) as newest,
        count(*) over (partition by l.customer_id) as answers
    from lapsed l
    join feedback f
        on f.customer_id = l.customer_id
        and arrow_cast(cast(f.ts as date), 'Int32')
            >= arrow_cast(l.last_purchase_date, 'Int32') - $complaint_window_days
    join codes c on c.reason_code = f.reason_code
),

final as (
    select
        l.customer_id,
        l.alert_date,
        l.stage,
        coalesce(sc.owner, ic.owner, case when e.customer_id is not null then 'company' else 'customer' end) as reason_owner,
        coalesce(s.reason_code, e.signal, 'no_company_signal') as reason,
        case when s.customer_id is not null then 'stated' else 'inferred' end as reason_source,
        coalesce(s.answer_date, e.signal_date) as evidence_date,
        coalesce(s.detail, e.detail) as evidence,
        coalesce(s.answers, e.signals, 0) as evidence_count
    from lapsed l
    left join stated s on s.customer_id = l.customer_id and s.newest = 1
    left join evidence e on e.customer_id = l.customer_id and e.newest = 1
    left join codes sc on sc.reason_code = s.reason_code
    left join codes ic on ic.reason_code = coalesce(e.signal, 'no_company_signal')
)

select * from final
