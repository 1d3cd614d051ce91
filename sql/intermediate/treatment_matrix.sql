-- treatment_matrix: value x reason for every lapsed customer (DOMAIN.md), the one place
-- the matrix is written:
--                      company's fault        customer's reason
--     high value       make_amends (CPR)      win_back
--     low value        opportunistic          let_go
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
        when g.grade in ('A', 'B') and l.reason_owner = 'company' then 'make_amends'
        when g.grade in ('A', 'B') then 'win_back'
        when l.reason_owner = 'company' then 'opportunistic'
        else 'let_go'
    end as cell
from lapse_reasons l
join value_grade g on g.customer_id = l.customer_id
