-- treatment_matrix: value x reason for every lapsed customer (DOMAIN.md), the one place
-- the matrix is written (reason_owner from lapse_reasons, by the seed reason_codes):
--                  company        customer   competitor      objective   abusive
--     high value   make_amends    win_back   win_back        let_go      let_go
--     low value    opportunistic  let_go     opportunistic   let_go      let_go
-- A competitor's lure is answered with a win-back offer (the low-value one: the cheap
-- opportunistic offer); an objective reason (moved away, no longer needs it) or bad faith
-- is let go, whatever the value. A reason code whose seed row names a treatment gets it
-- whatever the value (reason_codes.treatment).
-- High value = grade A or B (the customers behind most of the revenue). Freshly lapsed
-- customers get a quick win-back, long-lost ones (lapse stage 'ended') a long-term one.
-- sltv reads the cell to price the campaign a customer would get; winback_treatment adds
-- the customers to let go whatever their cell (unprofitable, or not worth the cost).
select
    l.customer_id,
    l.alert_date,
    l.stage,
    case when l.stage = 'ended' then 'long_term' else 'quick' end as timing,
    g.grade,
    case when g.grade in ('A', 'B') then 'high' else 'low' end as value_level,
    l.reason_owner,
    l.reason,
    case
        when c.treatment is not null then c.treatment
        when l.reason_owner in ('objective', 'abusive') then 'let_go'
        when g.grade in ('A', 'B') and l.reason_owner = 'company' then 'make_amends'
        when g.grade in ('A', 'B') then 'win_back'
        when l.reason_owner in ('company', 'competitor') then 'opportunistic'
        else 'let_go'
    end as cell
from lapse_reasons l
join value_grade g on g.customer_id = l.customer_id
left join reason_codes c on c.reason_code = l.reason
