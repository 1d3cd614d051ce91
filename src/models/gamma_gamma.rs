//! Gamma-Gamma model of monetary value (Fader & Hardie 2013): fit, conditional expected spend, independence check.
//!
//! A customer's mean repeat spend `m` over `x` repeat purchases has density
//! `Γ(px+q)/(Γ(px)Γ(q)) v^q m^(px-1) x^(px) / (v + x m)^(px+q)`. Only customers
//! with `x > 0` and `m > 0` enter the fit; `m` is ignored when `x = 0`.

use super::hyp2f1::{digamma, ln_gamma};
use super::optimize::{lbfgs, parallel_sum};
use super::{FitOptions, FitReport, ModelError, check_options, finite, worker_count};

/// Gamma-Gamma parameters: per-transaction spend `~ Gamma(p, nu)`, `nu ~ Gamma(q, v)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GammaGammaParams {
    pub p: f64,
    pub q: f64,
    pub v: f64,
}

/// Checks one `(x, m)` pair; `m` only matters when `x > 0`.
pub fn check_spend(row: Option<usize>, x: f64, m: f64) -> Result<(), ModelError> {
    let bad = |field, value, problem| {
        Err(ModelError::InvalidObservation {
            row,
            field,
            value,
            problem,
        })
    };
    if !(x.is_finite() && x >= 0.0 && x.fract() == 0.0) {
        return bad("x", x, "is not a whole number >= 0");
    }
    if x > 0.0 && !(m.is_finite() && m >= 0.0) {
        return bad("mean repeat spend", m, "is not a finite amount >= 0");
    }
    Ok(())
}

impl GammaGammaParams {
    /// `GammaGammaParams { p, q, v }` in one call.
    pub const fn new(p: f64, q: f64, v: f64) -> Self {
        Self { p, q, v }
    }

    /// Fails unless all parameters are finite and positive.
    pub fn validate(&self) -> Result<(), ModelError> {
        for (name, value) in [
            ("Gamma-Gamma p", self.p),
            ("Gamma-Gamma q", self.q),
            ("Gamma-Gamma v", self.v),
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

    /// Log-density of mean spend `m > 0` over `x >= 1` repeat purchases.
    pub fn log_likelihood(&self, x: f64, m: f64) -> Result<f64, ModelError> {
        self.validate()?;
        check_spend(None, x, m)?;
        if x == 0.0 || m == 0.0 {
            let problem = "must be > 0 (with x > 0) to have a Gamma-Gamma likelihood";
            return Err(ModelError::InvalidObservation {
                row: None,
                field: "mean repeat spend",
                value: m,
                problem,
            });
        }
        let Self { p, q, v } = *self;
        let px = p * x;
        let ll = ln_gamma(px + q) - ln_gamma(px) - ln_gamma(q)
            + q * v.ln()
            + (px - 1.0) * m.ln()
            + px * x.ln()
            - (px + q) * (v + x * m).ln();
        finite(ll, "Gamma-Gamma log-likelihood", || format!("x={x}, m={m}"))
    }

    /// Population mean spend per transaction `p v / (q - 1)`; it only exists for
    /// `q > 1`, otherwise [`ModelError::InfiniteMeanSpend`].
    pub fn population_mean_spend(&self) -> Result<f64, ModelError> {
        self.validate()?;
        if self.q <= 1.0 {
            return Err(ModelError::InfiniteMeanSpend { q: self.q });
        }
        finite(
            self.p * self.v / (self.q - 1.0),
            "Gamma-Gamma population mean spend",
            || format!("{self:?}"),
        )
    }

    /// `E[spend per transaction | x, m] = p (v + x m) / (p x + q - 1)`, a weighted
    /// average of the population mean and `m`; for `x = 0` the population mean.
    /// Needs `p x + q > 1` (else [`ModelError::InfiniteMeanSpend`]).
    pub fn conditional_expected_average_value(&self, x: f64, m: f64) -> Result<f64, ModelError> {
        self.validate()?;
        check_spend(None, x, m)?;
        if x == 0.0 {
            return self.population_mean_spend();
        }
        let denom = self.p * x + self.q - 1.0;
        if denom <= 0.0 {
            return Err(ModelError::InfiniteMeanSpend { q: self.q });
        }
        finite(
            self.p * (self.v + x * m) / denom,
            "Gamma-Gamma expected spend",
            || format!("x={x}, m={m}"),
        )
    }
}

/// Pearson correlation between `x` and mean spend over customers with `x > 0`
/// and `m > 0`. The Gamma-Gamma model assumes it is about 0; a clearly non-zero
/// value (say beyond ±0.3) means the model's spend predictions are biased.
pub fn frequency_spend_correlation(freq: &[f64], mean_spend: &[f64]) -> Result<f64, ModelError> {
    let (x, m) = usable(freq, mean_spend, "frequency-spend correlation")?;
    if x.len() < 2 {
        return Err(ModelError::TooFewCustomers {
            context: "frequency-spend correlation",
            found: x.len(),
            required: 2,
        });
    }
    let n = x.len() as f64;
    let (mx, mm) = (x.iter().sum::<f64>() / n, m.iter().sum::<f64>() / n);
    let (mut sxy, mut sxx, mut syy) = (0.0, 0.0, 0.0);
    for (a, b) in x.iter().zip(&m) {
        sxy += (a - mx) * (b - mm);
        sxx += (a - mx) * (a - mx);
        syy += (b - mm) * (b - mm);
    }
    if sxx == 0.0 || syy == 0.0 {
        return Err(ModelError::ZeroVariance {
            context: "frequency-spend correlation",
        });
    }
    Ok((sxy / (sxx * syy).sqrt()).clamp(-1.0, 1.0))
}

/// Validated `(x, m)` of the customers with `x > 0` and `m > 0`, sorted by `(x, m)`.
fn usable(
    freq: &[f64],
    mean_spend: &[f64],
    context: &'static str,
) -> Result<(Vec<f64>, Vec<f64>), ModelError> {
    if freq.len() != mean_spend.len() {
        return Err(ModelError::LengthMismatch {
            context,
            column: "mean_spend",
            expected: freq.len(),
            found: mean_spend.len(),
        });
    }
    if freq.is_empty() {
        return Err(ModelError::Empty { context });
    }
    let mut pairs = Vec::new();
    for (i, (&x, &m)) in freq.iter().zip(mean_spend).enumerate() {
        check_spend(Some(i), x, m)?;
        if x > 0.0 && m > 0.0 {
            pairs.push((x, m));
        }
    }
    if pairs.is_empty() {
        return Err(ModelError::NoPositiveSpend {
            n_customers: freq.len(),
        });
    }
    // Sorted, so every float sum over them is added in the same order whatever order the
    // customers come in (a query engine's row order varies with its partitioning).
    pairs.sort_unstable_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
    Ok(pairs.into_iter().unzip())
}

/// Maximum-likelihood Gamma-Gamma fit over log-parameters (L-BFGS, exact
/// gradient) on the customers with `x > 0` and `m > 0`, starting from
/// `p = 1, q = 2, v = mean(m)` (population mean = sample mean).
pub fn fit_gamma_gamma(
    freq: &[f64],
    mean_spend: &[f64],
    opts: &FitOptions,
) -> Result<FitReport<GammaGammaParams>, ModelError> {
    check_options(opts)?;
    let (x, m) = usable(freq, mean_spend, "Gamma-Gamma fit")?;
    if x.len() < opts.min_customers {
        return Err(ModelError::TooFewCustomers {
            context: "Gamma-Gamma fit",
            found: x.len(),
            required: opts.min_customers,
        });
    }
    let n = x.len() as f64;
    let threads = worker_count(opts.threads, x.len(), 50_000);
    let likelihood = Likelihood::new(&x, &m, threads);
    let pen = opts.penalizer;
    let objective = |phi: &[f64], g: &mut [f64]| {
        let th = [phi[0].exp(), phi[1].exp(), phi[2].exp()];
        let mut grad = [0.0; 3];
        let ll = likelihood.eval(th, &mut grad);
        for i in 0..3 {
            g[i] = -th[i] * grad[i] / n + 2.0 * pen * phi[i];
        }
        -ll / n + pen * phi.iter().map(|v| v * v).sum::<f64>()
    };
    let start = [0.0, 2f64.ln(), (m.iter().sum::<f64>() / n).ln()];
    let res = lbfgs(
        &start,
        opts.max_iterations,
        opts.gradient_tolerance,
        objective,
    )
    .ok_or_else(|| ModelError::FitFailed {
        context: "Gamma-Gamma fit",
        detail: "the likelihood is not finite at the starting point; check the spend values".into(),
    })?;
    let params = GammaGammaParams::new(res.x[0].exp(), res.x[1].exp(), res.x[2].exp());
    params.validate().map_err(|_| ModelError::NotFinite {
        context: "Gamma-Gamma fit",
        detail: format!("the parameters ran off to {params:?}"),
    })?;
    let log_likelihood = -(res.f - pen * res.x.iter().map(|v| v * v).sum::<f64>()) * n;
    finite(log_likelihood, "Gamma-Gamma fit", || format!("{params:?}"))?;
    Ok(FitReport {
        params,
        log_likelihood,
        iterations: res.iterations,
        converged: res.converged,
        n_customers: x.len(),
        gradient_norm: res.grad_norm,
    })
}

/// The Gamma-Gamma log-likelihood of the customers' repeat purchases `x` and mean spends
/// `m`, with what depends on the data only computed once.
struct Likelihood<'a> {
    x: &'a [f64],
    n: f64,
    /// Distinct x (whole numbers) with their counts, for the x-only terms.
    xs: Vec<f64>,
    count: Vec<f64>,
    /// ln(v + x m) = ln(x m) + ln1p(v/(x m)): the data-only part is summed once, so
    /// the parameter-dependent sums stay small and the objective's rounding noise low.
    inv_xm: Vec<f64>,
    s_lnm: f64,
    s_lnxm: f64,
    threads: usize,
}

impl<'a> Likelihood<'a> {
    fn new(x: &'a [f64], m: &[f64], threads: usize) -> Self {
        let mut xs: Vec<f64> = x.to_vec();
        xs.sort_unstable_by(f64::total_cmp);
        xs.dedup();
        let mut count = vec![0.0; xs.len()];
        x.iter()
            .for_each(|xi| count[xs.partition_point(|w| w < xi)] += 1.0);
        let inv_xm: Vec<f64> = x.iter().zip(m).map(|(a, b)| 1.0 / (a * b)).collect();
        let s_lnm: f64 = m.iter().map(|v| v.ln()).sum();
        let s_lnxm: f64 = inv_xm.iter().map(|v| -v.ln()).sum();
        Likelihood {
            x,
            n: x.len() as f64,
            xs,
            count,
            inv_xm,
            s_lnm,
            s_lnxm,
            threads,
        }
    }

    /// The log-likelihood at `(p, q, v)`; writes its gradient to `grad`.
    fn eval(&self, [p, q, v]: [f64; 3], grad: &mut [f64; 3]) -> f64 {
        let (x, n, inv_xm) = (self.x, self.n, &self.inv_xm);
        let ln_v = v.ln();
        let mut ll = n * (q * ln_v - ln_gamma(q)) - q * self.s_lnxm - self.s_lnm;
        let mut g = [0.0, n * (ln_v - digamma(q)) - self.s_lnxm, n * q / v];
        for (&xv, &c) in self.xs.iter().zip(&self.count) {
            let px = p * xv;
            ll += c * (ln_gamma(px + q) - ln_gamma(px));
            g[0] += c * xv * (digamma(px + q) - digamma(px));
            g[1] += c * digamma(px + q);
        }
        let s = parallel_sum::<4, _>(x.len(), self.threads, |range| {
            let mut s = [0.0; 4]; // sum L, sum x L, sum 1/(v+xm), sum x/(v+xm), L = ln1p(v/(xm))
            for (&xv, &ixm) in x[range.clone()].iter().zip(&inv_xm[range]) {
                let vr = v * ixm;
                let (l, inv) = (vr.ln_1p(), ixm / (1.0 + vr));
                s[0] += l;
                s[1] += xv * l;
                s[2] += inv;
                s[3] += xv * inv;
            }
            s
        });
        ll -= p * s[1] + q * s[0];
        *grad = [g[0] - s[1], g[1] - s[0], g[2] - p * s[3] - q * s[2]];
        ll
    }
}

#[cfg(test)]
#[path = "gamma_gamma_tests.rs"]
mod tests;
