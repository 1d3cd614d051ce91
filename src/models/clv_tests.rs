//! Tests of `clv.rs`, kept apart so the model code stays short to read.

use super::super::simulate::{
    TimeResolution, observation_lengths, simulate_bgnbd, simulate_gamma_gamma,
};
use super::*;

/// Everyone buys at a steady 1 per 30 days and never drops out (Gamma with a
/// huge shape = fixed rate; Beta(1e-3, 1e6) = dropout ~1e-9).
const STEADY: BgNbdParams = BgNbdParams::new(1e6, 3e7, 1e-3, 1e6);

#[test]
fn steady_buyer_clv_is_a_hand_checkable_annuity() {
    let opts = ClvOptions {
        margin: 0.25,
        ..ClvOptions::default()
    };
    assert_eq!(opts.months(), 12);
    let m = opts.monthly_rate();
    assert!(((1.0 + m).powi(12) - 1.1).abs() < 1e-14);
    // 12 months x 1 purchase x 80 spend x 0.25 margin, discounted monthly:
    let annuity = (1.0 - 1.0 / 1.1) / m; // sum_{i=1..12} (1+m)^-i
    let clv = discounted_clv(&STEADY, 6.0, 170.0, 180.0, 80.0, &opts).unwrap();
    assert!(
        (clv - 20.0 * annuity).abs() < 1e-4 * clv,
        "{clv} vs {}",
        20.0 * annuity
    );
    let undiscounted = discounted_clv(
        &STEADY,
        6.0,
        170.0,
        180.0,
        80.0,
        &ClvOptions {
            annual_discount_rate: 0.0,
            ..opts
        },
    );
    assert!((undiscounted.unwrap() - 240.0).abs() < 1e-3);
}

#[test]
fn clv_grows_with_horizon_and_shrinks_with_discount_rate() {
    let bg = BgNbdParams::new(0.25, 30.0, 0.8, 2.5);
    let clv = |days, rate| {
        let opts = ClvOptions {
            horizon_days: days,
            annual_discount_rate: rate,
            ..ClvOptions::default()
        };
        discounted_clv(&bg, 4.0, 200.0, 300.0, 50.0, &opts).unwrap()
    };
    let by_horizon: Vec<f64> = [30.0, 90.0, 365.0, 730.0, 1825.0]
        .iter()
        .map(|d| clv(*d, 0.1))
        .collect();
    assert!(by_horizon.windows(2).all(|w| w[1] > w[0]), "{by_horizon:?}");
    assert_eq!(clv(29.0, 0.1), 0.0);
    let by_rate: Vec<f64> = [0.0, 0.05, 0.1, 0.5, 2.0]
        .iter()
        .map(|r| clv(730.0, *r))
        .collect();
    assert!(by_rate.windows(2).all(|w| w[1] < w[0]), "{by_rate:?}");
    // Undiscounted CLV telescopes to E[purchases in 360 days] x spend.
    let e360 = bg
        .conditional_expected_purchases(360.0, 4.0, 200.0, 300.0)
        .unwrap();
    assert!((clv(365.0, 0.0) - 50.0 * e360).abs() < 1e-12 * clv(365.0, 0.0));
}

#[test]
fn score_all_agrees_with_the_per_customer_functions() {
    let bg = BgNbdParams::new(0.25, 30.0, 0.8, 2.5);
    let gg = GammaGammaParams::new(6.0, 4.0, 15.0);
    let obs = simulate_bgnbd(
        &bg,
        &observation_lengths(3_000, 0, 700, 1),
        TimeResolution::WholeDays,
        2,
    )
    .unwrap();
    let x: Vec<f64> = obs.iter().map(|o| o.x).collect();
    let (t_x, t): (Vec<f64>, Vec<f64>) = obs.iter().map(|o| (o.t_x, o.t)).unzip();
    let m = simulate_gamma_gamma(&gg, &x, 3).unwrap();
    let opts = ClvOptions {
        threads: 2,
        margin: 0.3,
        ..ClvOptions::default()
    };
    let s = score_all(&bg, &gg, &x, &t_x, &t, &m, &opts).unwrap();
    assert!(!s.used_empirical_mean_spend && s.population_mean_spend == 30.0);
    for i in 0..x.len() {
        let close = |a: f64, b: f64| (a - b).abs() <= 1e-12 * b.abs().max(1e-300);
        assert!(
            close(s.p_alive[i], bg.p_alive(x[i], t_x[i], t[i]).unwrap()),
            "row {i}"
        );
        let e = bg
            .conditional_expected_purchases(365.0, x[i], t_x[i], t[i])
            .unwrap();
        assert!(close(s.expected_purchases[i], e), "row {i}");
        let ev = gg.conditional_expected_average_value(x[i], m[i]).unwrap();
        assert!(close(s.expected_avg_value[i], ev), "row {i}");
        assert!(
            close(
                s.clv[i],
                discounted_clv(&bg, x[i], t_x[i], t[i], ev, &opts).unwrap()
            ),
            "row {i}"
        );
    }
    // q <= 1: one-time buyers get the repeat buyers' mean spend instead.
    let heavy = GammaGammaParams { q: 0.9, ..gg };
    let s = score_all(&bg, &heavy, &x, &t_x, &t, &m, &opts).unwrap();
    assert!(s.used_empirical_mean_spend && s.clv.iter().all(|v| v.is_finite()));
    assert_eq!(
        score_all(&bg, &gg, &[], &[], &[], &[], &opts)
            .unwrap()
            .clv
            .len(),
        0
    );
    assert!(matches!(
        score_all(&bg, &gg, &x, &t_x, &t[1..], &m, &opts),
        Err(ModelError::LengthMismatch { .. })
    ));
    let mut bad = t.clone();
    bad[5] = f64::NAN;
    assert!(matches!(
        score_all(&bg, &gg, &x, &t_x, &bad, &m, &opts),
        Err(ModelError::InvalidObservation { .. })
    ));
}

#[test]
fn a_discount_rate_of_minus_100_percent_is_refused() {
    assert!(
        ClvOptions {
            annual_discount_rate: -1.0,
            ..ClvOptions::default()
        }
        .validate()
        .is_err()
    );
}
