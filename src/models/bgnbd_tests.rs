//! Tests of `bgnbd.rs`, kept apart so the model code stays short to read.

use super::*;

fn rel(got: f64, want: f64) -> f64 {
    (got - want).abs() / want.abs().max(1e-300)
}

// Printed by scripts/reference/clv_reference.py from the paper's formulas with
// scipy.special. Rows: r, alpha, a, b, x, t_x, T, loglik, P(alive), E[Y(30)], E[Y(365)]
// / r, alpha, a, b, x, t_x, T, t, E[Y(t)] (large t/(alpha+T), then degenerate-fit
// parameters: tiny a or b, values from mpmath) / r, alpha, a, b, t, E[X(t)].
#[rustfmt::skip]
const REFERENCE: [[f64; 11]; 21] = [
    [0.243, 30.9, 0.793, 2.426, 0.0, 0.0, 100.0, -0.3508136298299538, 1.0, 0.05386683386148677, 0.5116495857722697],
    [0.243, 30.9, 0.793, 2.426, 0.0, 0.0, 2.0, -0.015240103149833262, 1.0, 0.19716842199766196, 1.3910663747379703],
    [0.243, 30.9, 0.793, 2.426, 1.0, 30.0, 200.0, -6.6300602354586315, 0.36855187947034396, 0.057964533378486505, 0.5661492565840112],
    [0.243, 30.9, 0.793, 2.426, 4.0, 150.0, 300.0, -22.725630229258037, 0.34545139971580896, 0.12955426555271893, 1.2662690139828099],
    [0.243, 30.9, 0.793, 2.426, 10.0, 400.0, 410.0, -50.73710641409525, 0.9192966011847958, 0.6265062403324518, 6.243110956874678],
    [0.243, 30.9, 0.793, 2.426, 25.0, 60.0, 700.0, -64.21988745582826, 4.68187501353944e-22, 4.779137151441089e-22, 5.044556217087446e-21],
    [0.243, 30.9, 0.793, 2.426, 120.0, 690.0, 700.0, -342.32007568365566, 0.9669058004775811, 4.697451840262641, 49.23681917738438],
    [1.5, 12.0, 2.2, 5.0, 0.0, 0.0, 100.0, -3.35038833226064, 1.0, 0.3650929843602516, 2.3153456543066095],
    [1.5, 12.0, 2.2, 5.0, 0.0, 0.0, 2.0, -0.23122601974088663, 1.0, 1.8385357413894676, 4.365969467129028],
    [1.5, 12.0, 2.2, 5.0, 1.0, 30.0, 200.0, -6.358036867203701, 0.03818750732345631, 0.0126735161587686, 0.09297031303423704],
    [1.5, 12.0, 2.2, 5.0, 4.0, 150.0, 300.0, -22.565765149431826, 0.08999028887842407, 0.04484266363758276, 0.33288555557715277],
    [1.5, 12.0, 2.2, 5.0, 10.0, 400.0, 410.0, -51.45299541093006, 0.8284678580868297, 0.6408599136804718, 4.857713946094636],
    [1.5, 12.0, 2.2, 5.0, 25.0, 60.0, 700.0, -56.18153208622894, 5.60488415958703e-26, 6.019746578493207e-26, 5.122032372941541e-25],
    [1.5, 12.0, 2.2, 5.0, 120.0, 690.0, 700.0, -340.72373838241214, 0.9099698258287757, 4.459182760464418, 36.5612519356378],
    [0.7, 45.0, 1.001, 3.0, 0.0, 0.0, 100.0, -0.8190498768551784, 1.0, 0.1388892174021232, 1.2341203843892723],
    [0.7, 45.0, 1.001, 3.0, 0.0, 0.0, 2.0, -0.030439578357817076, 1.0, 0.39701272987302866, 2.615923432246164],
    [0.7, 45.0, 1.001, 3.0, 1.0, 30.0, 200.0, -6.0803864004606085, 0.2860193538144561, 0.05766220697632253, 0.5374868449360973],
    [0.7, 45.0, 1.001, 3.0, 4.0, 150.0, 300.0, -21.937891964996744, 0.29094458447811744, 0.1153725975336042, 1.0815256624685237],
    [0.7, 45.0, 1.001, 3.0, 10.0, 400.0, 410.0, -50.047281850077056, 0.9043152925723962, 0.6210244014182251, 5.943949896657072],
    [0.7, 45.0, 1.001, 3.0, 25.0, 60.0, 700.0, -65.69975389557372, 3.639807898941321e-21, 3.69862635083871e-21, 3.7823704607370035e-20],
    [0.7, 45.0, 1.001, 3.0, 120.0, 690.0, 700.0, -343.13247652363975, 0.959763626854866, 4.5749282639253055, 46.33246642231149],
];
#[rustfmt::skip]
const LARGE_U: [[f64; 9]; 12] = [
    [0.243, 3.0, 0.793, 2.426, 0.0, 0.0, 0.0, 365.0, 5.046705565203384],
    [0.243, 3.0, 0.793, 2.426, 3.0, 5.0, 6.0, 365.0, 18.937331467367567],
    [0.243, 3.0, 0.793, 2.426, 40.0, 20.0, 20.0, 1000.0, 234.60429930298906],
    [2.0, 1.0, 0.3, 0.4, 0.0, 0.0, 0.0, 365.0, 80.6616046436242],
    [2.0, 1.0, 0.3, 0.4, 3.0, 5.0, 6.0, 365.0, 73.19628811510418],
    [2.0, 1.0, 0.3, 0.4, 40.0, 20.0, 20.0, 1000.0, 830.8733311086307],
    [0.5, 2.0, 1.001, 8.0, 0.0, 0.0, 0.0, 365.0, 14.90366871855396],
    [0.5, 2.0, 1.001, 8.0, 3.0, 5.0, 6.0, 365.0, 25.145183859313324],
    [0.5, 2.0, 1.001, 8.0, 40.0, 20.0, 20.0, 1000.0, 172.20603230919602],
    [0.67, 55.5, 2.7e-06, 144000.0, 0.0, 0.0, 120.0, 365.0, 1.3934472934019215],
    [0.5, 20.0, 2.0, 1e-05, 0.0, 0.0, 3.0, 365.0, 0.7565337938379609],
    [0.5, 20.0, 3e-06, 20000.0, 4.0, 90.0, 100.0, 365.0, 13.687499979798874],
];
#[rustfmt::skip]
const NEW_CUSTOMER: [[f64; 6]; 9] = [
    [0.243, 30.9, 0.793, 2.426, 1.0, 0.007825507105318265],
    [0.243, 30.9, 0.793, 2.426, 30.0, 0.20859596502110195],
    [0.243, 30.9, 0.793, 2.426, 365.0, 1.4485410509974772],
    [1.5, 12.0, 2.2, 5.0, 1.0, 0.12116618829083267],
    [1.5, 12.0, 2.2, 5.0, 30.0, 2.0100628836062686],
    [1.5, 12.0, 2.2, 5.0, 365.0, 4.4593066185392916],
    [0.7, 45.0, 1.001, 3.0, 1.0, 0.015482625982784753],
    [0.7, 45.0, 1.001, 3.0, 30.0, 0.4127556513529387],
    [0.7, 45.0, 1.001, 3.0, 365.0, 2.6834181191391036],
];

#[test]
fn per_customer_values_match_the_scipy_reference() {
    for [r, alpha, a, b, x, t_x, t, ll, pa, e30, e365] in REFERENCE {
        let p = BgNbdParams { r, alpha, a, b };
        assert!(
            (p.log_likelihood(x, t_x, t).unwrap() - ll).abs() < 1e-10 * ll.abs().max(1.0),
            "ll {p:?} {x}"
        );
        assert!(
            rel(p.p_alive(x, t_x, t).unwrap(), pa) < 1e-10,
            "p_alive {p:?} {x}"
        );
        assert!(
            rel(
                p.conditional_expected_purchases(30.0, x, t_x, t).unwrap(),
                e30
            ) < 1e-9,
            "E30 {p:?} {x}"
        );
        assert!(
            rel(
                p.conditional_expected_purchases(365.0, x, t_x, t).unwrap(),
                e365
            ) < 1e-9,
            "E365 {p:?} {x}"
        );
    }
    for [r, alpha, a, b, x, t_x, t, h, want] in LARGE_U {
        let got = BgNbdParams { r, alpha, a, b }
            .conditional_expected_purchases(h, x, t_x, t)
            .unwrap();
        assert!(rel(got, want) < 1e-9, "large u: {got} vs {want}");
    }
    for [r, alpha, a, b, h, want] in NEW_CUSTOMER {
        let got = BgNbdParams { r, alpha, a, b }
            .expected_purchases_new_customer(h)
            .unwrap();
        assert!(rel(got, want) < 1e-9, "new customer: {got} vs {want}");
    }
}

fn reference_customers() -> Vec<Observation> {
    REFERENCE[..7]
        .iter()
        .cycle()
        .take(40)
        .map(|c| Observation::new(c[4], c[5], c[6]))
        .collect()
}

#[test]
fn grouped_total_and_gradient_are_exact() {
    let obs = reference_customers();
    for [r, alpha, a, b, ..] in [REFERENCE[0], REFERENCE[7], REFERENCE[14]] {
        let p = BgNbdParams { r, alpha, a, b };
        let sum: f64 = obs
            .iter()
            .map(|o| p.log_likelihood(o.x, o.t_x, o.t).unwrap())
            .sum();
        assert!(rel(total_log_likelihood(&p, &obs).unwrap(), sum) < 1e-12);
        let [x, t_x, t] = columns(&obs);
        let data = FitData::new(index_customers(&x, &t_x, &t).unwrap());
        let th = [r, alpha, a, b];
        let mut grad = [0.0; 4];
        data.eval(th, 2, &mut grad);
        for i in 0..4 {
            let h = 1e-6 * th[i];
            let (mut up, mut down) = (th, th);
            up[i] += h;
            down[i] -= h;
            let fd =
                (data.eval(up, 1, &mut [0.0; 4]) - data.eval(down, 1, &mut [0.0; 4])) / (2.0 * h);
            assert!(
                (grad[i] - fd).abs() < 1e-6 * fd.abs().max(1.0),
                "param {i}: {} vs {fd}",
                grad[i]
            );
        }
    }
}

/// Fitted parameters give a probability and a finite, non-negative forecast for every
/// observation (also used by the simulation tests).
pub(crate) fn assert_usable(p: &BgNbdParams, obs: &[Observation]) {
    for o in obs {
        let pa = p.p_alive(o.x, o.t_x, o.t).unwrap();
        let e = p
            .conditional_expected_purchases(365.0, o.x, o.t_x, o.t)
            .unwrap();
        assert!(
            (0.0..=1.0).contains(&pa) && e.is_finite() && e >= 0.0,
            "{p:?} {o:?}: {pa} {e}"
        );
    }
}

#[test]
fn degenerate_inputs_give_specific_errors() {
    let opts = FitOptions::default();
    let obs = |x, t_x, t| Observation { x, t_x, t };
    assert!(matches!(
        fit_bgnbd(&[], &opts),
        Err(ModelError::Empty { .. })
    ));
    let one = [obs(2.0, 10.0, 30.0)];
    assert!(matches!(
        fit_bgnbd(&one, &opts),
        Err(ModelError::TooFewCustomers { found: 1, .. })
    ));
    let tiny = [
        obs(2.0, 10.0, 30.0),
        obs(0.0, 0.0, 40.0),
        obs(1.0, 5.0, 50.0),
    ];
    assert!(matches!(
        fit_bgnbd(&tiny, &opts),
        Err(ModelError::TooFewCustomers {
            found: 3,
            required: 10,
            ..
        })
    ));
    // With the floor lowered, three customers fit to something finite (or fail cleanly).
    match fit_bgnbd(
        &tiny,
        &FitOptions {
            min_customers: 1,
            ..opts.clone()
        },
    ) {
        Ok(fit) => assert_usable(&fit.params, &tiny),
        Err(e) => assert!(
            matches!(
                e,
                ModelError::NotFinite { .. } | ModelError::InvalidParameter { .. }
            ),
            "{e}"
        ),
    }
    // A small penalty keeps such a tiny fit's parameters moderate.
    let stabilised = FitOptions {
        min_customers: 1,
        penalizer: 0.01,
        ..opts.clone()
    };
    let fit = fit_bgnbd(&tiny, &stabilised).unwrap();
    let p = fit.params;
    assert!(
        fit.converged
            && [p.r, p.alpha, p.a, p.b]
                .iter()
                .all(|v| (1e-3..1e3).contains(v)),
        "{fit:?}"
    );
    let none: Vec<_> = (0..50)
        .map(|i| obs(0.0, 0.0, 10.0 + f64::from(i)))
        .collect();
    assert!(matches!(
        fit_bgnbd(&none, &opts),
        Err(ModelError::NoRepeatBuyers { n_customers: 50 })
    ));
    let mut data = vec![Observation::new(1.0, 5.0, 20.0); 20];
    data[7] = Observation::new(2.0, 12.0, 10.0);
    let err = fit_bgnbd(&data, &opts).unwrap_err();
    assert!(
        err.to_string().starts_with("customer row 7: t_x = 12"),
        "{err}"
    );
    let bad_params = BgNbdParams::new(0.0, 1.0, 1.0, 1.0);
    assert!(matches!(
        bad_params.p_alive(1.0, 1.0, 2.0),
        Err(ModelError::InvalidParameter { .. })
    ));
    let p = BgNbdParams::new(0.3, 10.0, 0.5, 2.0);
    assert!(
        p.conditional_expected_purchases(f64::NAN, 1.0, 1.0, 2.0)
            .is_err()
    );
    assert!(
        fit_bgnbd(
            &tiny,
            &FitOptions {
                penalizer: -1.0,
                ..opts
            }
        )
        .is_err()
    );
}
