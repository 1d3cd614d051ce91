-- lapse_reasons: did the company likely cause the lapse? A complaint, service ticket, bad
-- review, refund request or refund in the window before the alert points at the company;
-- otherwise the reason is presumed the customer's own (needs changed, moved, competitor).
-- Value x reason later decides the treatment.
with lapsed as (
    select * from lapse_alerts
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

final as (
    select
        l.customer_id,
        l.alert_date,
        l.stage,
        case when e.customer_id is not null then 'company' else 'customer' end as reason_owner,
        coalesce(e.signal, 'no_company_signal') as reason,
        e.signal_date as evidence_date,
        e.detail as evidence,
        coalesce(e.signals, 0) as evidence_count
    from lapsed l
    left join evidence e on e.customer_id = l.customer_id and e.newest = 1
)

select * from final
