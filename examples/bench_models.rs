//! Times fit BG/NBD + fit Gamma-Gamma + scoring on 1,000,000 simulated customers.
//! Run: cargo run --release --example bench_models [n] [min_T] [max_T] [threads]
use std::time::Instant;
use winback::models::simulate::*;
use winback::models::*;

fn main() {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .map(|a| a.parse().unwrap())
        .collect();
    let n = *args.first().unwrap_or(&1_000_000) as usize;
    let (lo, hi) = (
        *args.get(1).unwrap_or(&200) as u32,
        *args.get(2).unwrap_or(&700) as u32,
    );
    let threads = *args.get(3).unwrap_or(&0) as usize; // 0 = all cores
    let opts = FitOptions {
        threads,
        ..FitOptions::default()
    };
    let bg_true = BgNbdParams {
        r: 0.25,
        alpha: 30.0,
        a: 0.8,
        b: 2.5,
    };
    let gg_true = GammaGammaParams {
        p: 6.0,
        q: 4.0,
        v: 15.0,
    };
    let t0 = Instant::now();
    let obs = simulate_bgnbd(
        &bg_true,
        &observation_lengths(n, lo, hi, 1),
        TimeResolution::WholeDays,
        2,
    )
    .unwrap();
    let x: Vec<f64> = obs.iter().map(|o| o.x).collect();
    let (t_x, t): (Vec<f64>, Vec<f64>) = obs.iter().map(|o| (o.t_x, o.t)).unzip();
    let m = simulate_gamma_gamma(&gg_true, &x, 3).unwrap();
    let sim = t0.elapsed().as_secs_f64();

    let t1 = Instant::now();
    let bg = fit_bgnbd(&obs, &opts).unwrap();
    let fit_bg = t1.elapsed().as_secs_f64();
    let t2 = Instant::now();
    let gg = fit_gamma_gamma(&x, &m, &opts).unwrap();
    let fit_gg = t2.elapsed().as_secs_f64();
    let t3 = Instant::now();
    let scores = score_all(
        &bg.params,
        &gg.params,
        &x,
        &t_x,
        &t,
        &m,
        &ClvOptions {
            threads,
            ..ClvOptions::default()
        },
    )
    .unwrap();
    let score = t3.elapsed().as_secs_f64();

    let repeat = x.iter().filter(|v| **v > 0.0).count();
    println!(
        "customers {n} (T {lo}..={hi} days, {repeat} repeat buyers), simulation {sim:.3} s (not counted)"
    );
    println!(
        "fit BG/NBD   {fit_bg:.3} s  {:?} iter {} converged {}",
        bg.params, bg.iterations, bg.converged
    );
    println!(
        "fit GG       {fit_gg:.3} s  {:?} iter {} converged {}",
        gg.params, gg.iterations, gg.converged
    );
    println!("score_all    {score:.3} s  (p_alive, E[purchases 365d], E[spend], CLV 12 months)");
    println!("total        {:.3} s", fit_bg + fit_gg + score);
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "means: p_alive {:.4}, purchases {:.4}, spend {:.3}, clv {:.3}",
        mean(&scores.p_alive),
        mean(&scores.expected_purchases),
        mean(&scores.expected_avg_value),
        mean(&scores.clv)
    );
}
