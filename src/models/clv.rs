//! Discounted customer lifetime value, the column-wise scorer for the pipeline, and the SLTV helper.
//!
//! CLV follows lifetimes' `customer_lifetime_value` (and PyMC-Marketing): in
//! steps of exactly 30 days, month `i` contributes
//! `margin * E[spend] * (E[N(0, 30i]] - E[N(0, 30(i-1)]]) / (1 + monthly_rate)^i`,
//! with the BG/NBD conditional expectations `N` counted from the end of
//! observation. The horizon is rounded DOWN to whole 30-day months (365 days =
//! 12 months = 360 days), exactly as lifetimes' `range(30, time*30 + 1, 30)`.
//! `monthly_rate = (1 + annual_rate)^(1/12) - 1`, so twelve monthly discounts
//! compound to exactly the annual rate (lifetimes takes a monthly rate directly).

use super::gamma_gamma::check_spend;
use super::hyp2f1::bgnbd_kernel;
use super::optimize::{Indexed, index_customers, parallel_fill};
use super::{BgNbdParams, GammaGammaParams, ModelError, check_horizon, finite, worker_count};

/// Length of one discounting step in days.
pub const MONTH_DAYS: f64 = 30.0;

/// CLV settings.
#[derive(Debug, Clone, PartialEq)]
pub struct ClvOptions {
    /// Horizon in days (default 365 = 12 whole months); also the horizon of
    /// `Scores::expected_purchases`, which is NOT rounded to months.
    pub horizon_days: f64,
    /// Yearly discount rate, e.g. 0.10 for 10% (default).
    pub annual_discount_rate: f64,
    /// Share of spend that is profit (default 1.0 = CLV in revenue).
    pub margin: f64,
    /// Worker threads for `score_all`; 0 = all cores.
    pub threads: usize,
}

impl Default for ClvOptions {
    fn default() -> Self {
        Self {
            horizon_days: 365.0,
            annual_discount_rate: 0.10,
            margin: 1.0,
            threads: 0,
        }
    }
}

impl ClvOptions {
    /// Fails on a negative/non-finite horizon or margin, or a rate <= -100%.
    pub fn validate(&self) -> Result<(), ModelError> {
        check_horizon(self.horizon_days)?;
        let bad = |name, value, problem| {
            Err(ModelError::InvalidParameter {
                name,
                value,
                problem,
            })
        };
        if !(self.annual_discount_rate.is_finite() && self.annual_discount_rate > -1.0) {
            return bad(
                "ClvOptions::annual_discount_rate",
                self.annual_discount_rate,
                "must be a finite rate > -1 (0.10 = 10%)",
            );
        }
        if !(self.margin.is_finite() && self.margin >= 0.0) {
            return bad(
                "ClvOptions::margin",
                self.margin,
                "must be a finite share >= 0 (1.0 = revenue)",
            );
        }
        Ok(())
    }

    /// `(1 + annual)^(1/12) - 1`.
    pub fn monthly_rate(&self) -> f64 {
        (self.annual_discount_rate.ln_1p() / 12.0).exp_m1()
    }

    /// Whole 30-day steps in the horizon.
    pub fn months(&self) -> usize {
        (self.horizon_days / MONTH_DAYS + 1e-9).floor() as usize
    }
}

/// `sum_i (G(30i) - G(30(i-1))) / (1+rate)^i`: discounted expected purchases per
/// unit of `P(alive)` (see `bgnbd_kernel`); depends on `x` and `T` only.
fn discounted_kernel(
    bg: &BgNbdParams,
    x: f64,
    t: f64,
    months: usize,
    rate: f64,
) -> Result<f64, ModelError> {
    let (mut prev, mut total, mut discount) = (0.0, 0.0, 1.0);
    for i in 1..=months {
        discount /= 1.0 + rate;
        let g = bgnbd_kernel(bg.r, bg.a, bg.b, x, MONTH_DAYS * i as f64 / (bg.alpha + t))?;
        total += (g - prev).max(0.0) * discount;
        prev = g;
    }
    Ok(total)
}

/// Discounted CLV of one customer given their expected spend per purchase
/// (e.g. `GammaGammaParams::conditional_expected_average_value`).
pub fn discounted_clv(
    bg: &BgNbdParams,
    x: f64,
    t_x: f64,
    t: f64,
    expected_avg_value: f64,
    opts: &ClvOptions,
) -> Result<f64, ModelError> {
    opts.validate()?;
    if !(expected_avg_value.is_finite() && expected_avg_value >= 0.0) {
        let problem = "must be a finite amount >= 0";
        return Err(ModelError::InvalidParameter {
            name: "expected_avg_value",
            value: expected_avg_value,
            problem,
        });
    }
    let alive = bg.p_alive(x, t_x, t)?;
    let k = discounted_kernel(bg, x, t, opts.months(), opts.monthly_rate())?;
    finite(opts.margin * expected_avg_value * alive * k, "CLV", || {
        format!("x={x}, t_x={t_x}, T={t}")
    })
}

/// Column outputs of [`score_all`], one entry per input row.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Scores {
    /// `P(alive at T)`.
    pub p_alive: Vec<f64>,
    /// Expected purchases in the next `horizon_days` (not rounded to months).
    pub expected_purchases: Vec<f64>,
    /// Expected spend per purchase (Gamma-Gamma).
    pub expected_avg_value: Vec<f64>,
    /// Discounted CLV over the whole months of the horizon, times `margin`.
    pub clv: Vec<f64>,
    /// Spend per purchase used for customers without repeats.
    pub population_mean_spend: f64,
    /// True when `q <= 1` made `p v/(q-1)` undefined and the mean spend of repeat
    /// buyers with positive spend in this input was used instead.
    pub used_empirical_mean_spend: bool,
}

/// Scores every customer: columns `x`, `t_x`, `t` (= T) in days and mean repeat
/// spend (ignored where `x = 0`). Work is shared per distinct `(x, T)`: the 2F1
/// kernel only depends on those. Zero rows give empty columns. Customers with
/// `x > 0` whose posterior mean spend is undefined (`p x + q <= 1`) get their own
/// observed mean spend.
pub fn score_all(
    bg: &BgNbdParams,
    gg: &GammaGammaParams,
    x: &[f64],
    t_x: &[f64],
    t: &[f64],
    mean_spend: &[f64],
    opts: &ClvOptions,
) -> Result<Scores, ModelError> {
    bg.validate()?;
    gg.validate()?;
    opts.validate()?;
    let mean = population_mean_spend(gg, x, mean_spend)?;
    score_with_mean(bg, gg, mean, x, t_x, t, mean_spend, opts)
}

/// The spend per purchase used for customers without repeats: the Gamma-Gamma population
/// mean, or (when `q <= 1` leaves it undefined: `true`) the mean spend of the repeat
/// buyers with positive spend among `x` and `mean_spend`.
pub fn population_mean_spend(
    gg: &GammaGammaParams,
    x: &[f64],
    mean_spend: &[f64],
) -> Result<(f64, bool), ModelError> {
    match gg.population_mean_spend() {
        Ok(v) => Ok((v, false)),
        Err(_) => {
            let mut buyers: Vec<f64> = x
                .iter()
                .zip(mean_spend)
                .filter(|(x, m)| **x > 0.0 && **m > 0.0)
                .map(|(_, m)| *m)
                .collect();
            // Summed in sorted order: the same mean whatever order the rows come in.
            buyers.sort_unstable_by(f64::total_cmp);
            if buyers.is_empty() && x.contains(&0.0) {
                return Err(ModelError::InfiniteMeanSpend { q: gg.q });
            }
            Ok((
                buyers.iter().sum::<f64>() / buyers.len().max(1) as f64,
                true,
            ))
        }
    }
}

/// [`score_all`] with the population mean spend given (from [`population_mean_spend`]
/// over the whole population): scores any part of it, a batch at a time, alike.
#[allow(clippy::too_many_arguments)]
pub fn score_with_mean(
    bg: &BgNbdParams,
    gg: &GammaGammaParams,
    (population_mean_spend, used_empirical_mean_spend): (f64, bool),
    x: &[f64],
    t_x: &[f64],
    t: &[f64],
    mean_spend: &[f64],
    opts: &ClvOptions,
) -> Result<Scores, ModelError> {
    bg.validate()?;
    gg.validate()?;
    opts.validate()?;
    let n = x.len();
    for (column, len) in [
        ("t_x", t_x.len()),
        ("t", t.len()),
        ("mean_spend", mean_spend.len()),
    ] {
        if len != n {
            return Err(ModelError::LengthMismatch {
                context: "score_all",
                column,
                expected: n,
                found: len,
            });
        }
    }
    let indexed = index_customers(x, t_x, t)?;
    for (i, (&xi, &mi)) in x.iter().zip(mean_spend).enumerate() {
        check_spend(Some(i), xi, mi)?;
    }
    let (pair_idx, kernels) = pair_kernels(bg, &indexed, opts)?;
    let Indexed { days, rows, .. } = indexed;
    let ln_day: Vec<f64> = days.iter().map(|d| (bg.alpha + d).ln()).collect();
    let mut out: Vec<[f64; 4]> = vec![[0.0; 4]; n];
    parallel_fill(
        &mut out,
        worker_count(opts.threads, n, 50_000),
        |start, part| {
            for (j, o) in part.iter_mut().enumerate() {
                let i = start + j;
                let (r, xv, m) = (rows[i], x[i], mean_spend[i]);
                let alive = bg.p_alive_unchecked(xv, ln_day[r[2] as usize] - ln_day[r[1] as usize]);
                let [g, k] = kernels[pair_idx[i] as usize];
                let ev = expected_avg_value(gg, population_mean_spend, xv, m);
                *o = [alive, alive * g, ev, opts.margin * ev * alive * k];
            }
        },
    );
    let mut scores = Scores {
        population_mean_spend,
        used_empirical_mean_spend,
        ..Scores::default()
    };
    for (i, o) in out.into_iter().enumerate() {
        if o.iter().any(|v| !v.is_finite()) {
            return Err(ModelError::NotFinite {
                context: "score_all",
                detail: format!("row {i}: x={}, t_x={}, T={}", x[i], t_x[i], t[i]),
            });
        }
        scores.p_alive.push(o[0]);
        scores.expected_purchases.push(o[1]);
        scores.expected_avg_value.push(o[2]);
        scores.clv.push(o[3]);
    }
    Ok(scores)
}

/// The BG/NBD kernels of each distinct (x, T) pair of customers, at the horizon and
/// discounted by month (computed once per pair, in parallel), and each customer's pair.
fn pair_kernels(
    bg: &BgNbdParams,
    indexed: &Indexed,
    opts: &ClvOptions,
) -> Result<(Vec<u32>, Vec<[f64; 2]>), ModelError> {
    let Indexed { xs, days, rows } = indexed;
    let nd = days.len();
    let mut pair_of: std::collections::HashMap<u64, u32> = std::collections::HashMap::new();
    let mut pairs: Vec<(f64, f64)> = Vec::new();
    let pair_idx: Vec<u32> = rows
        .iter()
        .map(|r| {
            let key = u64::from(r[0]) * nd as u64 + u64::from(r[2]);
            *pair_of.entry(key).or_insert_with(|| {
                pairs.push((xs[r[0] as usize], days[r[2] as usize]));
                (pairs.len() - 1) as u32
            })
        })
        .collect();
    let threads = worker_count(opts.threads, pairs.len(), 64);
    let (months, rate, horizon) = (opts.months(), opts.monthly_rate(), opts.horizon_days);
    let mut kernels: Vec<Result<[f64; 2], ModelError>> = vec![Ok([0.0; 2]); pairs.len()];
    parallel_fill(&mut kernels, threads, |start, out| {
        for (j, slot) in out.iter_mut().enumerate() {
            let (xv, tv) = pairs[start + j];
            *slot = bgnbd_kernel(bg.r, bg.a, bg.b, xv, horizon / (bg.alpha + tv))
                .and_then(|g| Ok([g, discounted_kernel(bg, xv, tv, months, rate)?]));
        }
    });
    let kernels: Vec<[f64; 2]> = kernels.into_iter().collect::<Result<_, _>>()?;
    Ok((pair_idx, kernels))
}

/// Gamma-Gamma's expected spend per purchase of a customer with `x` repeat purchases of
/// mean spend `m`: the population mean without repeats, `m` itself where the model has
/// no finite mean (`p x + q <= 1`).
fn expected_avg_value(gg: &GammaGammaParams, population_mean_spend: f64, x: f64, m: f64) -> f64 {
    if x == 0.0 {
        population_mean_spend
    } else {
        let denom = gg.p * x + gg.q - 1.0;
        if denom > 0.0 {
            gg.p * (gg.v + x * m) / denom
        } else {
            m
        }
    }
}

#[cfg(test)]
#[path = "clv_tests.rs"]
mod tests;
