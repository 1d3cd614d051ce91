//! BG/NBD model (Fader, Hardie & Lee 2005): exact likelihood, fast maximum-likelihood fit, per-customer predictions.
//!
//! Speed: customers are mapped onto tables of distinct `x` values and distinct
//! day values; every likelihood term except one is then summed per distinct `x`
//! or per day, and the remaining one (the "dropped out after the last purchase"
//! branch) per unique repeat-buyer `(x, t_x, T)` triple: one `exp` and one `ln_1p`
//! each, on all cores. With the exact gradient, L-BFGS over log-parameters
//! needs about 20 evaluations, so a million customers fit in well under a second.

use super::hyp2f1::{bgnbd_kernel, digamma, ln_gamma};
use super::optimize::{Indexed, count_triples, index_customers, lbfgs, parallel_sum};
use super::{
    FitOptions, FitReport, ModelError, Observation, check_horizon, check_observation,
    check_options, finite, worker_count,
};

/// BG/NBD parameters: purchase rates `lambda ~ Gamma(r, alpha)` (alpha in days),
/// dropout probabilities `p ~ Beta(a, b)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BgNbdParams {
    pub r: f64,
    pub alpha: f64,
    pub a: f64,
    pub b: f64,
}

fn sigmoid(v: f64) -> f64 {
    if v >= 0.0 {
        1.0 / (1.0 + (-v).exp())
    } else {
        let e = v.exp();
        e / (1.0 + e)
    }
}

/// `ln(1 + e^v)` without overflow.
fn softplus(v: f64) -> f64 {
    v.max(0.0) + (-v.abs()).exp().ln_1p()
}

impl BgNbdParams {
    /// `BgNbdParams { r, alpha, a, b }` in one call.
    pub const fn new(r: f64, alpha: f64, a: f64, b: f64) -> Self {
        Self { r, alpha, a, b }
    }

    /// Fails unless all four parameters are finite and positive.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (name, value) in [
            ("BG/NBD r", self.r),
            ("BG/NBD alpha", self.alpha),
            ("BG/NBD a", self.a),
            ("BG/NBD b", self.b),
        ] {
            if !(value.is_finite() && value > 0.0) {
                let problem = "must be a finite number > 0; use the parameters of a successful fit";
                return Err(ModelError::InvalidParameter {
                    name,
                    value,
                    problem,
                });
            }
        }
        Ok(())
    }

    /// Log-likelihood of one customer (FHL 2005 eq. 6, log-sum-exp for `x > 0`).
    pub fn log_likelihood(&self, x: f64, t_x: f64, t: f64) -> Result<f64, ModelError> {
        self.validate()?;
        check_observation(None, x, t_x, t)?;
        let Self { r, alpha, a, b } = *self;
        let head =
            ln_gamma(r + x) - ln_gamma(r) + r * alpha.ln() + ln_gamma(a + b) + ln_gamma(b + x)
                - ln_gamma(b)
                - ln_gamma(a + b + x);
        let mut ll = head - (r + x) * (alpha + t).ln();
        if x > 0.0 {
            ll += softplus(
                a.ln() - (b + x - 1.0).ln() + (r + x) * ((t - t_x) / (alpha + t_x)).ln_1p(),
            );
        }
        finite(ll, "BG/NBD log-likelihood", || {
            format!("x={x}, t_x={t_x}, T={t}")
        })
    }

    /// Probability that the customer is still alive at `T`.
    pub fn p_alive(&self, x: f64, t_x: f64, t: f64) -> Result<f64, ModelError> {
        self.validate()?;
        check_observation(None, x, t_x, t)?;
        Ok(self.p_alive_unchecked(x, ((t - t_x) / (self.alpha + t_x)).ln_1p()))
    }

    /// `P(alive)` from `log_gap = ln((alpha+T)/(alpha+t_x))`; always in [0, 1].
    pub(crate) fn p_alive_unchecked(&self, x: f64, log_gap: f64) -> f64 {
        if x == 0.0 {
            return 1.0;
        }
        sigmoid(-(self.a.ln() - (self.b + x - 1.0).ln() + (self.r + x) * log_gap))
    }

    /// Expected purchases in `(T, T + horizon]` given the history (FHL eq. 10;
    /// see [`bgnbd_kernel`] for how 2F1 is evaluated).
    pub fn conditional_expected_purchases(
        &self,
        horizon: f64,
        x: f64,
        t_x: f64,
        t: f64,
    ) -> Result<f64, ModelError> {
        check_horizon(horizon)?;
        let alive = self.p_alive(x, t_x, t)?;
        let g = bgnbd_kernel(self.r, self.a, self.b, x, horizon / (self.alpha + t))?;
        finite(alive * g, "BG/NBD expected purchases", || {
            format!("x={x}, t_x={t_x}, T={t}")
        })
    }

    /// Expected purchases of a brand-new customer in `(0, horizon]` (FHL eq. 9).
    pub fn expected_purchases_new_customer(&self, horizon: f64) -> Result<f64, ModelError> {
        self.validate()?;
        check_horizon(horizon)?;
        bgnbd_kernel(self.r, self.a, self.b, 0.0, horizon / self.alpha)
    }
}

/// The fit's data: counts per distinct `x` and per day of `T` (enough for every
/// term but one), and unique `(x, t_x, T)` triples with counts for repeat buyers.
struct FitData {
    xs: Vec<f64>,
    days: Vec<f64>,
    /// Repeat buyers' unique triples (indices as in [`Indexed`]) with counts.
    groups: Vec<([u32; 3], f64)>,
    weight_per_x: Vec<f64>,
    /// Per day value `d`: customers with `T = d`, and the sum of their `x`.
    weight_per_t: Vec<(f64, f64)>,
    n: f64,
}

impl FitData {
    fn new(ix: Indexed) -> Self {
        let mut weight_per_x = vec![0.0; ix.xs.len()];
        let mut weight_per_t = vec![(0.0, 0.0); ix.days.len()];
        for r in &ix.rows {
            weight_per_x[r[0] as usize] += 1.0;
            let d = &mut weight_per_t[r[2] as usize];
            d.0 += 1.0;
            d.1 += ix.xs[r[0] as usize];
        }
        let groups = count_triples(&ix, |r| ix.xs[r[0] as usize] > 0.0);
        Self {
            n: ix.rows.len() as f64,
            xs: ix.xs,
            days: ix.days,
            groups,
            weight_per_x,
            weight_per_t,
        }
    }

    /// Total log-likelihood at `(r, alpha, a, b)` and its gradient in `grad`.
    ///
    /// Per customer `ll = A(x) - (r+x) ln(alpha+T) + [x>0] softplus(D)` with
    /// `D = ln(a/(b+x-1)) + (r+x) ln((alpha+T)/(alpha+t_x))`: the first two terms
    /// are summed per distinct `x` and per day, only `softplus(D)` per triple.
    fn eval(&self, th: [f64; 4], threads: usize, grad: &mut [f64; 4]) -> f64 {
        let [r, alpha, a, b] = th;
        let (ln_alpha, ln_a) = (alpha.ln(), a.ln());
        let (lg_r, lg_b, lg_ab) = (ln_gamma(r), ln_gamma(b), ln_gamma(a + b));
        let (dg_r, dg_b, dg_ab) = (digamma(r), digamma(b), digamma(a + b));
        let (mut ll, mut acc) = (0.0, [0.0f64; 4]);
        // Per distinct x: (r + x, ln(a/(b+x-1)), 1/(b+x-1)), plus the x-only terms.
        let per_x: Vec<[f64; 3]> = self
            .xs
            .iter()
            .zip(&self.weight_per_x)
            .map(|(&x, &w)| {
                ll += w
                    * (ln_gamma(r + x) - lg_r + r * ln_alpha + lg_ab + ln_gamma(b + x)
                        - lg_b
                        - ln_gamma(a + b + x));
                acc[0] += w * (digamma(r + x) - dg_r + ln_alpha);
                acc[2] += w * (dg_ab - digamma(a + b + x));
                acc[3] += w * (dg_ab + digamma(b + x) - dg_b - digamma(a + b + x));
                let bx1 = b + x - 1.0;
                if x > 0.0 {
                    [r + x, ln_a - bx1.ln(), 1.0 / bx1]
                } else {
                    [r, 0.0, 0.0]
                }
            })
            .collect();
        acc[1] = self.n * r / alpha;
        let ln_day: Vec<f64> = self.days.iter().map(|d| (alpha + d).ln()).collect();
        let inv_day: Vec<f64> = self.days.iter().map(|d| 1.0 / (alpha + d)).collect();
        for ((&(w, wx), l), inv) in self.weight_per_t.iter().zip(&ln_day).zip(&inv_day) {
            ll -= (r * w + wx) * l;
            acc[0] -= w * l;
            acc[1] -= (r * w + wx) * inv;
        }
        let sums = parallel_sum::<5, _>(self.groups.len(), threads, |range| {
            let mut s = [0.0f64; 5]; // softplus, d/dr, d/dalpha, sum w*sigma, sum w*sigma/(b+x-1)
            for (k, w) in &self.groups[range] {
                let [rx, c4, inv_bx1] = per_x[k[0] as usize];
                let (tx, t) = (k[1] as usize, k[2] as usize);
                let gap = ln_day[t] - ln_day[tx];
                let d = c4 + rx * gap;
                let e = (-d.abs()).exp();
                let ws = w * if d >= 0.0 {
                    1.0 / (1.0 + e)
                } else {
                    e / (1.0 + e)
                }; // w * sigmoid(d)
                s[0] += w * (d.max(0.0) + e.ln_1p());
                s[1] += ws * gap;
                s[2] += ws * rx * (inv_day[t] - inv_day[tx]);
                s[3] += ws;
                s[4] += ws * inv_bx1;
            }
            s
        });
        *grad = [
            acc[0] + sums[1],
            acc[1] + sums[2],
            acc[2] + sums[3] / a,
            acc[3] - sums[4],
        ];
        ll + sums[0]
    }
}

fn columns(obs: &[Observation]) -> [Vec<f64>; 3] {
    [
        obs.iter().map(|o| o.x).collect(),
        obs.iter().map(|o| o.t_x).collect(),
        obs.iter().map(|o| o.t).collect(),
    ]
}

/// Total log-likelihood of many customers (same fast path as the fit).
pub fn total_log_likelihood(params: &BgNbdParams, obs: &[Observation]) -> Result<f64, ModelError> {
    params.validate()?;
    let [x, t_x, t] = columns(obs);
    let data = FitData::new(index_customers(&x, &t_x, &t)?);
    let ll = data.eval(
        [params.r, params.alpha, params.a, params.b],
        worker_count(0, data.groups.len(), 50_000),
        &mut [0.0; 4],
    );
    finite(ll, "BG/NBD total log-likelihood", || format!("{params:?}"))
}

/// Maximum-likelihood BG/NBD fit over log-parameters with L-BFGS and the exact
/// gradient, starting from `r = 1, alpha = mean(T)/(1 + mean(x)), a = 1, b = 1`.
pub fn fit_bgnbd(
    obs: &[Observation],
    opts: &FitOptions,
) -> Result<FitReport<BgNbdParams>, ModelError> {
    check_options(opts)?;
    if obs.is_empty() {
        return Err(ModelError::Empty {
            context: "BG/NBD fit",
        });
    }
    let [x, t_x, t] = columns(obs);
    let data = FitData::new(index_customers(&x, &t_x, &t)?);
    if obs.len() < opts.min_customers {
        return Err(ModelError::TooFewCustomers {
            context: "BG/NBD fit",
            found: obs.len(),
            required: opts.min_customers,
        });
    }
    if x.iter().all(|&v| v == 0.0) {
        return Err(ModelError::NoRepeatBuyers {
            n_customers: obs.len(),
        });
    }
    let n = data.n;
    // Sums over the sorted distinct values, not the rows: like the likelihood, the start
    // must not depend on the order the customers come in.
    let sum_t: f64 = (data.days.iter().zip(&data.weight_per_t))
        .map(|(d, w)| d * w.0)
        .sum();
    let sum_x: f64 = (data.xs.iter().zip(&data.weight_per_x))
        .map(|(x, w)| x * w)
        .sum();
    let alpha0 = (sum_t / n / (1.0 + sum_x / n)).max(1.0);
    let threads = worker_count(opts.threads, data.groups.len(), 50_000);
    let pen = opts.penalizer;
    let objective = |phi: &[f64], g: &mut [f64]| {
        let th = [phi[0].exp(), phi[1].exp(), phi[2].exp(), phi[3].exp()];
        let mut grad = [0.0; 4];
        let ll = data.eval(th, threads, &mut grad);
        for i in 0..4 {
            g[i] = -th[i] * grad[i] / n + 2.0 * pen * phi[i];
        }
        -ll / n + pen * phi.iter().map(|v| v * v).sum::<f64>()
    };
    let start = [0.0, alpha0.ln(), 0.0, 0.0];
    let m = lbfgs(
        &start,
        opts.max_iterations,
        opts.gradient_tolerance,
        objective,
    )
    .ok_or_else(|| ModelError::FitFailed {
        context: "BG/NBD fit",
        detail: "the likelihood is not finite at the starting point; check the inputs".into(),
    })?;
    let params = BgNbdParams::new(m.x[0].exp(), m.x[1].exp(), m.x[2].exp(), m.x[3].exp());
    params.validate().map_err(|_| ModelError::NotFinite {
        context: "BG/NBD fit",
        detail: format!("the parameters ran off to {params:?}"),
    })?;
    let log_likelihood = -(m.f - pen * m.x.iter().map(|v| v * v).sum::<f64>()) * n;
    finite(log_likelihood, "BG/NBD fit", || format!("{params:?}"))?;
    Ok(FitReport {
        params,
        log_likelihood,
        iterations: m.iterations,
        converged: m.converged,
        n_customers: obs.len(),
        gradient_norm: m.grad_norm,
    })
}

#[cfg(test)]
#[path = "bgnbd_tests.rs"]
pub(crate) mod tests;
