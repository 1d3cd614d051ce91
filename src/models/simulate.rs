//! Seedable simulators of BG/NBD customers and Gamma-Gamma spend, so tests and benchmarks know the true parameters.

use super::{BgNbdParams, GammaGammaParams, ModelError, Observation};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rand_distr::{Beta, Distribution, Exp1, Gamma};

/// How simulated purchase times are reported.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeResolution {
    /// Exact (continuous) purchase times: the model's own assumption.
    Continuous,
    /// Purchases collapsed to whole days, like real order data: `x` counts
    /// distinct purchase days after the first, `t_x` is the last purchase day.
    WholeDays,
}

/// `n` observation lengths `T`, uniform over the whole days `min_days..=max_days`.
pub fn observation_lengths(n: usize, min_days: u32, max_days: u32, seed: u64) -> Vec<f64> {
    let mut rng = StdRng::seed_from_u64(seed);
    let (lo, hi) = (min_days.min(max_days), min_days.max(max_days));
    (0..n)
        .map(|_| f64::from(rng.random_range(lo..=hi)))
        .collect()
}

/// Simulates one customer per entry of `observation_days` (their `T`) from BG/NBD:
/// `lambda ~ Gamma(r, scale 1/alpha)`, `p ~ Beta(a, b)`, purchases form a Poisson
/// process with rate `lambda` starting with a first purchase at time 0, and after
/// every repeat purchase the customer drops out with probability `p`.
pub fn simulate_bgnbd(
    params: &BgNbdParams,
    observation_days: &[f64],
    resolution: TimeResolution,
    seed: u64,
) -> Result<Vec<Observation>, ModelError> {
    params.validate()?;
    let bad = |problem| ModelError::InvalidParameter {
        name: "simulation shape",
        value: params.r,
        problem,
    };
    let rate = Gamma::new(params.r, 1.0 / params.alpha)
        .map_err(|_| bad("gives an invalid Gamma(r, 1/alpha)"))?;
    let dropout = Beta::new(params.a, params.b).map_err(|_| bad("gives an invalid Beta(a, b)"))?;
    let mut rng = StdRng::seed_from_u64(seed);
    let mut out = Vec::with_capacity(observation_days.len());
    for (row, &t_obs) in observation_days.iter().enumerate() {
        if !(t_obs.is_finite() && t_obs >= 0.0) {
            let problem = "must be a finite number of days >= 0";
            return Err(ModelError::InvalidObservation {
                row: Some(row),
                field: "T",
                value: t_obs,
                problem,
            });
        }
        let lambda: f64 = rate.sample(&mut rng);
        let p: f64 = dropout.sample(&mut rng);
        let (mut time, mut x, mut t_x) = (0.0f64, 0.0f64, 0.0f64);
        // A rate that underflowed to 0 (tiny r) means no repeat purchases at all.
        if lambda > 0.0 {
            loop {
                let gap: f64 = Exp1.sample(&mut rng);
                time += gap / lambda;
                if time > t_obs {
                    break;
                }
                match resolution {
                    TimeResolution::Continuous => {
                        x += 1.0;
                        t_x = time;
                    }
                    TimeResolution::WholeDays => {
                        let day = time.floor();
                        if day > t_x {
                            x += 1.0;
                            t_x = day;
                        }
                    }
                }
                if rng.random::<f64>() < p {
                    break;
                }
            }
        }
        let t = if resolution == TimeResolution::WholeDays {
            t_obs.floor()
        } else {
            t_obs
        };
        out.push(Observation { x, t_x, t });
    }
    Ok(out)
}

/// Mean repeat-purchase spend per customer from Gamma-Gamma: `nu ~ Gamma(q, scale 1/v)`,
/// each of the `x` repeat purchases `~ Gamma(p, scale 1/nu)`; their mean is drawn
/// directly as `Gamma(p x, scale 1/(nu x))`. Customers with `x = 0` get 0.
pub fn simulate_gamma_gamma(
    params: &GammaGammaParams,
    freq: &[f64],
    seed: u64,
) -> Result<Vec<f64>, ModelError> {
    params.validate()?;
    let bad = |value| ModelError::InvalidParameter {
        name: "Gamma-Gamma simulation",
        value,
        problem: "gives an invalid Gamma",
    };
    let nu_dist = Gamma::new(params.q, 1.0 / params.v).map_err(|_| bad(params.q))?;
    let mut rng = StdRng::seed_from_u64(seed);
    freq.iter()
        .enumerate()
        .map(|(row, &x)| {
            if !(x.is_finite() && x >= 0.0) {
                let problem = "must be a finite count >= 0";
                return Err(ModelError::InvalidObservation {
                    row: Some(row),
                    field: "x",
                    value: x,
                    problem,
                });
            }
            if x == 0.0 {
                return Ok(0.0);
            }
            let nu: f64 = nu_dist.sample(&mut rng);
            let mean = Gamma::new(params.p * x, 1.0 / (nu * x)).map_err(|_| bad(nu))?;
            Ok(mean.sample(&mut rng))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    //! Round trips: simulate from known parameters, fit, and get them back.
    use super::super::{FitOptions, fit_bgnbd, fit_gamma_gamma, frequency_spend_correlation};
    use super::*;
    use crate::models::bgnbd::tests::assert_usable;

    fn rel(got: f64, want: f64) -> f64 {
        (got - want).abs() / want.abs()
    }

    #[test]
    fn bgnbd_simulation_matches_expected_purchases_of_new_customers() {
        let truth = BgNbdParams::new(0.25, 30.0, 0.8, 2.5);
        let t = vec![365.0; 40_000];
        let sim = simulate_bgnbd(&truth, &t, TimeResolution::Continuous, 7).unwrap();
        let mean_x = sim.iter().map(|o| o.x).sum::<f64>() / sim.len() as f64;
        let expected = truth.expected_purchases_new_customer(365.0).unwrap();
        assert!(
            (mean_x - expected).abs() < 0.05 * expected,
            "{mean_x} vs {expected}"
        );
        assert!(
            sim.iter()
                .all(|o| o.t_x <= o.t && (o.x > 0.0 || o.t_x == 0.0))
        );
    }

    #[test]
    fn whole_days_are_integers_and_seed_is_reproducible() {
        let truth = BgNbdParams::new(2.0, 10.0, 0.5, 5.0);
        let t = observation_lengths(2_000, 0, 100, 1);
        let a = simulate_bgnbd(&truth, &t, TimeResolution::WholeDays, 3).unwrap();
        let b = simulate_bgnbd(&truth, &t, TimeResolution::WholeDays, 3).unwrap();
        assert_eq!(a, b);
        assert!(
            a.iter().all(|o| o.x.fract() == 0.0
                && o.t_x.fract() == 0.0
                && o.t_x <= o.t
                && o.x <= o.t_x)
        );
        assert!(simulate_bgnbd(&truth, &[f64::NAN], TimeResolution::WholeDays, 3).is_err());
    }

    #[test]
    fn gamma_gamma_simulation_has_the_population_mean() {
        let truth = GammaGammaParams::new(6.0, 4.0, 15.0);
        let freq: Vec<f64> = (0..40_000).map(|i| f64::from(i % 5)).collect();
        let m = simulate_gamma_gamma(&truth, &freq, 11).unwrap();
        let buyers: Vec<f64> = m
            .iter()
            .zip(&freq)
            .filter(|(_, x)| **x > 0.0)
            .map(|(m, _)| *m)
            .collect();
        let mean = buyers.iter().sum::<f64>() / buyers.len() as f64;
        assert!((mean - 30.0).abs() < 1.0, "{mean}"); // p v / (q - 1) = 30
        assert!(m.iter().zip(&freq).all(|(m, x)| (*x == 0.0) == (*m == 0.0)));
    }

    #[test]
    fn bgnbd_fit_recovers_simulated_parameters() {
        let truth = BgNbdParams::new(0.25, 30.0, 0.8, 2.5);
        let t = observation_lengths(20_000, 200, 700, 42);
        for resolution in [TimeResolution::Continuous, TimeResolution::WholeDays] {
            let obs = simulate_bgnbd(&truth, &t, resolution, 2024).unwrap();
            let fit = fit_bgnbd(&obs, &FitOptions::default()).unwrap();
            let p = fit.params;
            assert!(
                fit.converged && fit.n_customers == 20_000 && fit.log_likelihood < 0.0,
                "{fit:?}"
            );
            // Seeds 1-3 land within r ±0.004, alpha ±2, a ±0.025, b ±0.14 (whole days
            // bias alpha up ~5%); these bounds are 3-5 standard errors wide.
            assert!(
                (p.r - 0.25).abs() < 0.02 && (p.alpha - 30.0).abs() < 3.5,
                "{resolution:?}: {fit:?}"
            );
            assert!(
                (p.a - 0.8).abs() < 0.1 && (p.b - 2.5).abs() < 0.4,
                "{resolution:?}: {fit:?}"
            );
            let refit = fit_bgnbd(
                &obs,
                &FitOptions {
                    threads: 1,
                    ..FitOptions::default()
                },
            )
            .unwrap();
            assert!(
                rel(refit.params.r, p.r) < 1e-6
                    && rel(refit.log_likelihood, fit.log_likelihood) < 1e-12
            );
        }
    }

    #[test]
    fn gamma_gamma_fit_recovers_simulated_parameters() {
        let truth = GammaGammaParams::new(6.0, 4.0, 15.0);
        let mut freq: Vec<f64> = (0..20_000).map(|i| f64::from(i % 8)).collect();
        let m = simulate_gamma_gamma(&truth, &freq, 99).unwrap();
        let fit = fit_gamma_gamma(&freq, &m, &FitOptions::default()).unwrap();
        let p = fit.params;
        assert!(fit.converged && fit.n_customers == 17_500, "{fit:?}");
        // Seeds 1-3 land within p ±0.6, q ±0.12, v ±1.8; the mean spend is much sharper.
        assert!(
            (p.p - 6.0).abs() < 1.0 && (p.q - 4.0).abs() < 0.4 && (p.v - 15.0).abs() < 3.0,
            "{fit:?}"
        );
        assert!(
            (p.population_mean_spend().unwrap() - 30.0).abs() < 1.0,
            "{fit:?}"
        );
        assert!(frequency_spend_correlation(&freq, &m).unwrap().abs() < 0.05);
        // A perfectly spend-driven frequency is flagged.
        let spend: Vec<f64> = freq.iter().map(|x| 10.0 + 5.0 * x).collect();
        assert!((frequency_spend_correlation(&freq, &spend).unwrap() - 1.0).abs() < 1e-12);
        freq.iter_mut().for_each(|x| *x = x.min(1.0));
        let err = frequency_spend_correlation(&freq, &spend).unwrap_err();
        assert!(matches!(err, ModelError::ZeroVariance { .. }), "{err}");
    }

    #[test]
    fn bgnbd_fit_converges_on_hard_but_valid_data() {
        let t = observation_lengths(4_000, 30, 400, 9);
        // 95% one-time buyers: 9,500 single purchases plus 500 repeat buyers.
        let heavy = BgNbdParams::new(0.8, 40.0, 1.0, 4.0);
        let mut obs: Vec<Observation> = (0..9_500)
            .map(|i| Observation::new(0.0, 0.0, 30.0 + f64::from(i % 300)))
            .collect();
        let sim = simulate_bgnbd(&heavy, &t, TimeResolution::WholeDays, 4).unwrap();
        obs.extend(sim.into_iter().filter(|o| o.x > 0.0).take(500));
        let fit = fit_bgnbd(&obs, &FitOptions::default()).unwrap();
        assert!(fit.converged, "{fit:?}");
        assert_usable(&fit.params, &obs[9_400..]);
        // Skewed: near-zero rates for most, a few extreme buyers, everyone still alive.
        let skew = BgNbdParams::new(0.05, 2.0, 0.2, 0.3);
        let mut obs = simulate_bgnbd(&skew, &t, TimeResolution::WholeDays, 5).unwrap();
        obs.extend((0..20).map(|i| Observation::new(300.0 + f64::from(i), 399.0, 400.0)));
        let fit = fit_bgnbd(&obs, &FitOptions::default()).unwrap();
        assert!(fit.converged, "{fit:?}");
        assert_usable(&fit.params, &obs);
        // The iteration cap gives converged = false, not an error.
        let capped = fit_bgnbd(
            &obs,
            &FitOptions {
                max_iterations: 2,
                ..FitOptions::default()
            },
        )
        .unwrap();
        assert!(!capped.converged && capped.iterations == 2);
        assert_usable(&capped.params, &obs[..50]);
    }
}
