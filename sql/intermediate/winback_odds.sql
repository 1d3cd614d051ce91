-- winback_odds: P(win back), learned. For each treatment and RFM segment that past
-- campaigns contacted, the chance that a win-back campaign brings a customer back who
-- would not have come back anyway: the holdout-corrected (incremental) comeback rate of
-- campaign_results (whole campaign, like with like, finished windows only), summed over
-- campaigns, and shrunk towards a prior where there is little history.
--
-- Each arm's comeback rate is the mean of a beta-binomial posterior: the arm's own
-- customers plus k = $winback_prior_strength imagined customers who come back at the
-- prior rate (rho = $winback_prior_natural_rate without a message, rho + pi with one,
-- pi = $winback_prior_uplift):
--     treated_rate = (reactivated + k (rho + pi)) / (contacted + k)
--     holdout_rate = (holdout_reactivated + k rho) / (holdout + k)
--     p_win_back   = max(treated_rate - holdout_rate, 0)
-- With no history p_win_back is pi; with thousands of customers in each arm it is their
-- observed difference. A treatment and segment with no row here uses pi (sltv).
with history as (
    select
        treatment,
        segment,
        sum(contacted) as contacted,
        sum(reactivated) as reactivated,
        sum(holdout) as holdout,
        sum(holdout_reactivated) as holdout_reactivated
    from campaign_results
    where step = 0 and treatment <> 'all' and segment <> 'all' and window_complete
    group by treatment, segment
),

shrunk as (
    select
        h.*,
        (h.reactivated + p.k * (p.rho + p.pi)) / (h.contacted + p.k) as treated_rate,
        (h.holdout_reactivated + p.k * p.rho) / (h.holdout + p.k) as holdout_rate
    from history h
    cross join (
        select
            cast($winback_prior_strength as double) as k,
            cast($winback_prior_natural_rate as double) as rho,
            cast($winback_prior_uplift as double) as pi
    ) p
)

select
    treatment,
    segment,
    contacted,
    reactivated,
    holdout,
    holdout_reactivated,
    treated_rate,
    holdout_rate,
    greatest(treated_rate - holdout_rate, 0.0) as p_win_back
from shrunk
