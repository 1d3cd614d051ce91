//! Tests of `hyp2f1.rs`, kept apart so the model code stays short to read.

use super::*;

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-300)
}

// Printed by scripts/reference/clv_reference.py (scipy.special.hyp2f1 / gammaln / psi;
// scipy agrees with mpmath at 40 digits to 3e-11 on these).
#[rustfmt::skip]
const HYP2F1: [[f64; 5]; 13] = [
    [0.5, 1.5, 2.5, 0.3, 1.1080625510569324],
    [1.2, 3.4, 5.6, 0.85, 2.8233490852664564],
    [0.25, 2.5, 1.5, 0.95, 8.811427195338025],
    [0.25, 2.5, 1.5, 0.99, 55.33985905294655],
    [2.0, 3.0, 7.5, 0.999, 4.06954200329356],
    [1.5, 2.5, 4.0, 0.97, 9.784734861085157],
    [1.5, 2.5, 4.000001, 0.97, 9.784723381581648],
    [0.7, 1.3, 2.0, 0.995, 4.770518483315971],
    [20.0, 21.0, 15.0, 0.6, 60323879362.654755],
    [1.5, 2.0, 3.3, -0.5, 0.6832546300438868],
    [0.8, 1.1, 2.7, -4.0, 0.520764587574174],
    [-3.0, 2.0, 1.5, 0.7, -0.07519999999999999],
    [1.5, 0.5, 3.0, 1.0, 1.6976527263135504],
];
#[rustfmt::skip]
const GAMMA: [[f64; 3]; 7] = [
    [0.001, 6.907178885383853, -1000.5755719318103],
    [0.5, 0.5723649429247, -1.9635100260214235],
    [1.0, 0.0, -0.5772156649015329],
    [2.5, 0.2846828704729192, 0.7031566406452432],
    [7.3, 7.147892523022249, 1.917820335637986],
    [12.0, 17.502307845873887, 2.4426616799758123],
    [150.5, 602.5139548705853, 5.010637145933704],
];

#[test]
fn hyp2f1_matches_scipy_including_z_near_one_and_negative_z() {
    for [a, b, c, z, want] in HYP2F1 {
        let got = hyp2f1(a, b, c, z).unwrap();
        assert!(
            rel(got, want) < 1e-9,
            "2F1({a},{b};{c};{z}) = {got}, scipy {want}"
        );
    }
}

#[test]
fn hyp2f1_reports_undefined_cases() {
    assert!(hyp2f1(1.0, 1.0, 2.0, 1.5).is_err()); // branch cut
    assert!(hyp2f1(1.0, 1.0, -2.0, 0.5).is_err()); // pole in c
    assert!(hyp2f1(1.0, 2.0, 2.5, 1.0).is_err()); // c - a - b <= 0 diverges at z = 1
    assert!(hyp2f1(f64::NAN, 1.0, 2.0, 0.5).is_err());
    assert!(rel(hyp2f1(-2.0, 1.0, -5.0, 0.5).unwrap(), 1.225) < 1e-15); // terminates before the pole
    let huge = hyp2f1(400.0, 400.0, 1.0, 0.9); // ~1e800: overflow must be an error, not inf
    assert!(huge.is_err(), "{huge:?}");
}

#[test]
fn ln_gamma_and_digamma_match_scipy() {
    for [x, lg, dg] in GAMMA {
        assert!(
            (ln_gamma(x) - lg).abs() < 1e-13 * lg.abs().max(1.0),
            "lgamma({x})"
        );
        assert!(
            (digamma(x) - dg).abs() < 1e-13 * dg.abs().max(1.0),
            "digamma({x})"
        );
    }
    let sqrt_pi = PI.sqrt();
    let (l, s) = ln_gamma_signed(-0.5);
    assert!((l - (2.0 * sqrt_pi).ln()).abs() < 1e-13 && s == -1.0);
    let (l, s) = ln_gamma_signed(-1.5);
    assert!((l - (4.0 * sqrt_pi / 3.0).ln()).abs() < 1e-13 && s == 1.0);
    assert_eq!(ln_gamma_signed(-3.0).1, 0.0);
}

#[test]
fn kernel_series_and_quadrature_agree_where_both_apply() {
    for (r, a, b) in [
        (0.243, 0.793, 2.426),
        (2.0, 0.3, 0.4),
        (0.5, 1.0, 8.0),
        (1.5, 2.2, 5.0),
        (0.2, 6.0, 40.0),
    ] {
        for x in [0.0, 1.0, 5.0, 60.0] {
            for u in [0.05, 0.5, 2.0, 8.5] {
                let s = kernel_series(r, a, b, x, u, u / (1.0 + u)).unwrap();
                let q = kernel_quadrature(r, a, b, x, u).unwrap();
                assert!(
                    rel(s, q) < 1e-9,
                    "r={r} a={a} b={b} x={x} u={u}: series {s}, quadrature {q}"
                );
            }
        }
    }
}

#[test]
fn kernel_is_smooth_through_a_equal_one_and_zero_at_zero() {
    for u in [0.7, 30.0] {
        let at = |a| bgnbd_kernel(0.7, a, 3.0, 2.0, u).unwrap();
        let (lo, mid, hi) = (at(1.0 - 1e-9), at(1.0), at(1.0 + 1e-9));
        assert!(
            rel(lo, mid) < 1e-8 && rel(hi, mid) < 1e-8,
            "{lo} {mid} {hi}"
        );
    }
    assert_eq!(bgnbd_kernel(0.7, 0.9, 3.0, 2.0, 0.0).unwrap(), 0.0);
}
