-- sltv: second lifetime value. What winning each lapsed customer back is worth, net of what
-- trying costs (DOMAIN.md: chase only where it pays):
--     sltv = p_win_back x clv_if_won_back - sequence_cost
--   clv_if_won_back  the CLV the customer would have if they bought again today (model
--                    won_back_clv, from the ltv fit); a CLV is already a margin ($margin)
--   p_win_back       the chance the campaign wins them back beyond those who return
--                    anyway: learned per treatment and RFM segment (winback_odds), else
--                    the prior $winback_prior_uplift (p_basis says which)
--   sequence_cost    what the campaign of the customer's cell of the treatment matrix
--                    (treatment_campaigns) costs when every step is sent: each step's
--                    channel cost_per_message plus its offer_cost (campaign_costs, from the
--                    pipeline file: the figures budgets and ROI use). No campaign: 0.
-- chase = sltv > 0: worth a try. Customers the model lists who are not lapsed (p_alive below
-- its threshold) have no cell: treatment is NULL, no campaign, the prior.
with value as (
    select customer_id, clv_if_won_back, basis from won_back_clv
),

priced as (
    select
        v.customer_id,
        m.cell as treatment,
        m.timing,
        coalesce(s.segment, 'unknown') as segment,
        tc.campaign,
        coalesce(o.p_win_back, $winback_prior_uplift) as p_win_back,
        case when o.p_win_back is null then 'prior' else 'learned' end as p_basis,
        v.clv_if_won_back,
        coalesce(c.sequence_cost, 0.0) as sequence_cost,
        v.basis
    from value v
    left join treatment_matrix m on m.customer_id = v.customer_id
    left join rfm s on s.customer_id = v.customer_id
    left join treatment_campaigns tc on tc.treatment = m.cell and tc.timing = m.timing
    left join campaign_costs c on c.campaign = tc.campaign
    left join winback_odds o on o.treatment = m.cell and o.segment = coalesce(s.segment, 'unknown')
)

select
    customer_id,
    treatment,
    timing,
    segment,
    campaign,
    p_win_back,
    p_basis,
    clv_if_won_back,
    sequence_cost,
    p_win_back * clv_if_won_back - sequence_cost as sltv,
    p_win_back * clv_if_won_back - sequence_cost > 0 as chase,
    basis
from priced
