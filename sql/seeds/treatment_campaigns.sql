-- treatment_campaigns: which campaign works each cell of the treatment matrix, so that SLTV
-- (sql/marts/sltv.sql) weighs a customer's value against the cost of the campaign they
-- would get. Keep it in step with the audiences (sql/audiences/*.sql filter
-- winback_candidates by the same treatment and timing). A cell without a campaign costs
-- nothing to pursue. The opportunistic cell (low value, our fault) gets one cheap e-mail
-- whenever it lapsed (winback_opportunistic).
select * from (
    values
        ('make_amends', 'quick',     'winback_amends'),
        ('win_back',    'quick',     'winback_quick'),
        ('make_amends', 'long_term', 'winback_long_term'),
        ('win_back',    'long_term', 'winback_long_term'),
        ('opportunistic', 'quick',     'winback_opportunistic'),
        ('opportunistic', 'long_term', 'winback_opportunistic')
) as t(treatment, timing, campaign)
