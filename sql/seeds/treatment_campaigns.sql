-- treatment_campaigns: which campaign works each cell of the treatment matrix, so that SLTV
-- (sql/marts/sltv.sql) weighs a customer's value against the cost of the campaign they
-- would get. Keep it in step with the audiences (sql/audiences/*.sql filter
-- winback_candidates by the same treatment and timing). A cell without a campaign costs
-- nothing to pursue (the opportunistic cell: "include in the next general campaign").
select * from (
    values
        ('make_amends', 'quick',     'winback_amends'),
        ('win_back',    'quick',     'winback_quick'),
        ('make_amends', 'long_term', 'winback_long_term'),
        ('win_back',    'long_term', 'winback_long_term')
) as t(treatment, timing, campaign)
