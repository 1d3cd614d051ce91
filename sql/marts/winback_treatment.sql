-- winback_treatment: for every lapsed customer, what to do about it. Value x reason decides
-- the treatment (the cell of treatment_matrix: an objective reason or bad faith is let go
-- with the reason in `why`, e.g. "let go: objective reason: moved away"). Customers who cost
-- more than they bring (unprofitable) or whose second lifetime value does not cover the
-- cost of the campaign they would get are let go: some relationships should be ended, not rescued. (Without a
-- fitted model, sltv is empty and value x reason alone decides.)
-- Freshly lapsed customers get a quick win-back; long-lost ones a long-term one.
-- A mart (people read it: who is let go, and why); the campaigns read it through
-- winback_candidates (sql/intermediate/), which adds what their messages need.
with matrix as (
    select * from treatment_matrix
),

codes as (
    select reason_code, treatment, label from reason_codes
),

grades as (
    select customer_id, unprofitable from value_grade
),

second_value as (
    select customer_id, sltv, chase from sltv
),

contact as (
    select customer_id, consent_email, consent_sms from customers
),

decided as (
    select
        m.customer_id,
        m.alert_date,
        m.stage,
        m.timing,
        m.value_level,
        m.grade,
        m.reason_owner,
        m.reason,
        v.sltv,
        case
            when g.unprofitable then 'let_go'
            when v.chase is false then 'let_go'
            else m.cell
        end as treatment,
        case
            -- let go for the reason itself (an objective reason, bad faith, or a code the
            -- seed reason_codes lets go): the reason says why, before any other
            when m.cell = 'let_go' and (m.reason_owner in ('objective', 'abusive') or rc.treatment = 'let_go')
                then 'let go: ' || m.reason_owner || ' reason: ' || coalesce(rc.label, m.reason)
            when g.unprofitable then 'unprofitable: costs more to serve than it brings'
            when v.chase is false then 'second lifetime value does not cover the win-back cost'
            else 'value ' || m.value_level || ' x ' || m.reason_owner || ' reason'
        end as why,
        case
            when c.consent_email is true then 'email'
            when c.consent_sms is true then 'sms'
            when c.customer_id is null then 'unknown'
            else 'none'
        end as channel
    from matrix m
    join grades g on g.customer_id = m.customer_id
    left join second_value v on v.customer_id = m.customer_id
    left join contact c on c.customer_id = m.customer_id
    left join codes rc on rc.reason_code = m.reason
),

final as (
    select
        customer_id,
        alert_date,
        stage,
        timing,
        value_level,
        grade,
        reason_owner,
        reason,
        sltv,
        treatment,
        why,
        -- Comprehend, Propose, Respond: ask what went wrong, offer something fair, follow up.
        case treatment
            when 'make_amends' then 'CPR: call or write personally, ask what went wrong, propose a fair remedy, follow up'
            when 'win_back' then 'personal message with an offer matched to their history'
            when 'opportunistic' then 'one cheap apology e-mail with a small code (winback_opportunistic)'
            else 'no contact'
        end as approach,
        channel
    from decided
)

select * from final
