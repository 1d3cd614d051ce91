//! Tests of `gamma_gamma.rs`, kept apart so the model code stays short to read.

use super::*;

// Printed by scripts/reference/clv_reference.py (scipy.special.gammaln, the note's
// formulas): p, q, v, x, m, log-likelihood, E[M | x, m].
#[rustfmt::skip]
const GG_REFERENCE: [[f64; 7]; 6] = [
    [6.0, 4.0, 15.0, 1.0, 20.0, -3.520042174643976, 23.333333333333332],
    [6.0, 4.0, 15.0, 5.0, 35.5, -4.205814270169469, 35.0],
    [6.0, 4.0, 15.0, 30.0, 12.25, -3.6480127232678115, 12.540983606557376],
    [0.5, 1.5, 200.0, 1.0, 20.0, -4.78922788494912, 110.0],
    [0.5, 1.5, 200.0, 5.0, 35.5, -4.781053562736577, 62.916666666666664],
    [0.5, 1.5, 200.0, 30.0, 12.25, -6.380356901804646, 18.306451612903224],
];

#[test]
fn per_customer_values_match_the_scipy_reference() {
    for [p, q, v, x, m, ll, ev] in GG_REFERENCE {
        let params = GammaGammaParams { p, q, v };
        assert!(
            (params.log_likelihood(x, m).unwrap() - ll).abs() < 1e-11 * ll.abs(),
            "{params:?} {x}"
        );
        assert!(
            (params.conditional_expected_average_value(x, m).unwrap() - ev).abs() < 1e-12 * ev,
            "{x}"
        );
    }
    let params = GammaGammaParams::new(6.0, 4.0, 15.0);
    assert_eq!(
        params
            .conditional_expected_average_value(0.0, f64::NAN)
            .unwrap(),
        30.0
    );
}

/// Regression: the fit summed over the customers in their input order and split the
/// sum per thread, so a query engine's row order or the core count changed its last
/// bits (and with them CLV ties and value tiers).
#[test]
fn fit_is_bit_identical_for_any_row_order_and_thread_count() {
    let gg = GammaGammaParams::new(6.0, 4.0, 15.0);
    // Enough repeat buyers (>= 2 x 50,000) that two threads really are used.
    let freq: Vec<f64> = (0..120_000)
        .map(|i| f64::from(1 + (i * 7919) % 23))
        .collect();
    let spend = super::super::simulate::simulate_gamma_gamma(&gg, &freq, 4).unwrap();
    let fit = |freq: &[f64], spend: &[f64], threads| {
        let opts = FitOptions {
            threads,
            ..FitOptions::default()
        };
        let r = fit_gamma_gamma(freq, spend, &opts).unwrap();
        [r.params.p, r.params.q, r.params.v, r.log_likelihood].map(f64::to_bits)
    };
    let one = fit(&freq, &spend, 1);
    let (mut f2, mut s2) = (freq.clone(), spend.clone());
    f2.reverse();
    s2.reverse();
    f2.rotate_left(12_345);
    s2.rotate_left(12_345);
    assert_eq!(one, fit(&f2, &s2, 2), "reordered rows, 2 threads");
    assert_eq!(one, fit(&freq, &spend, 3), "3 threads");
    let corr = |f: &[f64], s: &[f64]| frequency_spend_correlation(f, s).unwrap().to_bits();
    assert_eq!(corr(&freq, &spend), corr(&f2, &s2));
}

#[test]
fn degenerate_spend_data_gives_specific_errors() {
    let opts = FitOptions::default();
    let freq = vec![0.0, 1.0, 2.0, 3.0, 0.0, 5.0, 1.0, 2.0, 4.0, 3.0, 2.0, 1.0];
    let zero = vec![0.0; freq.len()];
    assert!(matches!(
        fit_gamma_gamma(&freq, &zero, &opts),
        Err(ModelError::NoPositiveSpend { n_customers: 12 })
    ));
    let spend: Vec<f64> = (0..12).map(|i| 10.0 + f64::from(i)).collect();
    assert!(matches!(
        fit_gamma_gamma(&[0.0; 12], &spend, &opts),
        Err(ModelError::NoPositiveSpend { .. })
    ));
    assert!(matches!(
        fit_gamma_gamma(&[], &[], &opts),
        Err(ModelError::Empty { .. })
    ));
    assert!(matches!(
        fit_gamma_gamma(&freq[..3], &spend[..3], &opts),
        Err(ModelError::TooFewCustomers { found: 2, .. })
    ));
    assert!(matches!(
        fit_gamma_gamma(&freq, &spend[..5], &opts),
        Err(ModelError::LengthMismatch { .. })
    ));
    let mut bad = spend.clone();
    bad[3] = -4.0;
    let err = fit_gamma_gamma(&freq, &bad, &opts).unwrap_err();
    assert!(
        matches!(err, ModelError::InvalidObservation { row: Some(3), .. }),
        "{err}"
    );
    bad[3] = f64::NAN;
    assert!(fit_gamma_gamma(&freq, &bad, &opts).is_err());
    // Missing spend of one-time buyers (x = 0) is ignored; tiny data still fits or says why.
    bad[3] = 7.0;
    bad[0] = f64::NAN;
    match fit_gamma_gamma(
        &freq,
        &bad,
        &FitOptions {
            min_customers: 1,
            ..opts
        },
    ) {
        Ok(fit) => assert!(fit.params.validate().is_ok() && fit.n_customers == 10),
        Err(e) => panic!("{e}"),
    }
    let heavy = GammaGammaParams::new(2.0, 0.8, 10.0);
    assert!(matches!(
        heavy.population_mean_spend(),
        Err(ModelError::InfiniteMeanSpend { .. })
    ));
    assert!(
        heavy
            .conditional_expected_average_value(3.0, 12.0)
            .unwrap()
            .is_finite()
    );
}
