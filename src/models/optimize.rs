//! Plumbing that makes the fits fast: L-BFGS, threaded sums, and compression of customer columns.
//!
//! Why not `argmin`: the fits have 3-4 parameters with exact analytic gradients,
//! so a 100-line L-BFGS with a backtracking line search is all that is needed,
//! and owning it lets us treat non-finite objective values as "step too far"
//! instead of errors. `argmin` + `argmin-math` would add a sizeable dependency
//! tree (and compile time on 2 cores) for no gain here.

use super::{ModelError, check_observation};

/// Result of [`lbfgs`].
#[derive(Debug, Clone)]
pub struct Minimum {
    /// Best point found.
    pub x: Vec<f64>,
    /// Objective value at `x`.
    pub f: f64,
    /// Largest absolute gradient component at `x`.
    pub grad_norm: f64,
    /// Iterations (accepted steps) performed.
    pub iterations: usize,
    /// True when `grad_norm <= gtol` was reached.
    pub converged: bool,
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

fn max_abs(a: &[f64]) -> f64 {
    a.iter().fold(0.0, |m, v| m.max(v.abs()))
}

/// Minimises `f` (which returns the value and writes the gradient) from `x0` with
/// L-BFGS (memory 8) and an Armijo backtracking line search.
///
/// A non-finite value is treated as +infinity (the step is shortened). Returns
/// `None` only when `f` is not finite at `x0`. Stops with `converged = true` once
/// the largest gradient component is at most `gtol`. It also stops when `f` has
/// reached its floating-point floor (no step decreases it, or 5 steps in a row
/// gain less than 1e-15 relative): that counts as converged only if the
/// gradient is at most `1000 * gtol` there. Reaching `max_iter` gives
/// `converged = false`. The returned point is always the best one found.
pub fn lbfgs<F>(x0: &[f64], max_iter: usize, gtol: f64, mut f: F) -> Option<Minimum>
where
    F: FnMut(&[f64], &mut [f64]) -> f64,
{
    const MEMORY: usize = 8;
    const MAX_STEP: f64 = 3.0; // largest move of one (log-)parameter per iteration
    let n = x0.len();
    let mut x = x0.to_vec();
    let mut g = vec![0.0; n];
    let mut fx = f(&x, &mut g);
    if !fx.is_finite() || g.iter().any(|v| !v.is_finite()) {
        return None;
    }
    let mut hist: Vec<Curvature> = Vec::with_capacity(MEMORY);
    let (mut x_new, mut g_new) = (vec![0.0; n], vec![0.0; n]);
    let (mut iterations, mut flat_steps, mut stalled) = (0, 0, false);
    while iterations < max_iter {
        if max_abs(&g) <= gtol {
            break;
        }
        let mut d = search_direction(&hist, &g);
        let mut slope = dot(&g, &d);
        if slope >= 0.0 || !slope.is_finite() {
            // Not a descent direction: restart from steepest descent.
            hist.clear();
            d = g.iter().map(|v| -v / max_abs(&g).max(1.0)).collect();
            slope = dot(&g, &d);
        }
        let biggest = max_abs(&d);
        if biggest > MAX_STEP {
            d.iter_mut().for_each(|v| *v *= MAX_STEP / biggest);
            slope *= MAX_STEP / biggest;
        }
        let mut step = 1.0;
        let mut accepted = false;
        for _ in 0..60 {
            x_new
                .iter_mut()
                .zip(&x)
                .zip(&d)
                .for_each(|((xn, xi), di)| *xn = xi + step * di);
            let f_new = f(&x_new, &mut g_new);
            if f_new.is_finite()
                && g_new.iter().all(|v| v.is_finite())
                && f_new <= fx + 1e-4 * step * slope
            {
                accepted = true;
                flat_steps = if fx - f_new <= 1e-15 * fx.abs().max(1.0) {
                    flat_steps + 1
                } else {
                    0
                };
                remember_step(&mut hist, MEMORY, (&x, &x_new), (&g, &g_new));
                std::mem::swap(&mut x, &mut x_new);
                std::mem::swap(&mut g, &mut g_new);
                fx = f_new;
                break;
            }
            step *= 0.5;
        }
        if !accepted {
            if hist.is_empty() {
                stalled = true; // even a tiny steepest-descent step cannot decrease f
                break;
            }
            hist.clear();
            continue;
        }
        iterations += 1;
        if flat_steps >= 5 {
            stalled = true;
            break;
        }
    }
    let grad_norm = max_abs(&g);
    let converged = grad_norm <= gtol || (stalled && grad_norm <= 1e3 * gtol);
    Some(Minimum {
        x,
        f: fx,
        grad_norm,
        iterations,
        converged,
    })
}

/// One remembered step of L-BFGS: the move `s`, the change of gradient `y` and `1 / s·y`.
type Curvature = (Vec<f64>, Vec<f64>, f64);

/// The L-BFGS search direction `d = -H g` by the two-loop recursion over the remembered
/// steps `hist` (oldest first); without any, the steepest descent scaled by the largest
/// gradient component (at least 1).
fn search_direction(hist: &[Curvature], g: &[f64]) -> Vec<f64> {
    let mut d: Vec<f64> = g.iter().map(|v| -v).collect();
    let mut alphas = Vec::with_capacity(hist.len());
    for (s, y, rho) in hist.iter().rev() {
        let al = rho * dot(s, &d);
        d.iter_mut().zip(y).for_each(|(di, yi)| *di -= al * yi);
        alphas.push(al);
    }
    let gamma = hist
        .last()
        .map_or(1.0 / max_abs(g).max(1.0), |(s, y, _)| dot(s, y) / dot(y, y));
    d.iter_mut().for_each(|v| *v *= gamma);
    for ((s, y, rho), al) in hist.iter().zip(alphas.iter().rev()) {
        let be = rho * dot(y, &d);
        d.iter_mut()
            .zip(s)
            .for_each(|(di, si)| *di += (al - be) * si);
    }
    d
}

/// Remembers the accepted step from `x.0` to `x.1` (gradients `g.0`, `g.1`) when its
/// curvature `s·y` is clearly positive, dropping the oldest step beyond `memory`.
fn remember_step(
    hist: &mut Vec<Curvature>,
    memory: usize,
    x: (&[f64], &[f64]),
    g: (&[f64], &[f64]),
) {
    let s: Vec<f64> = x.1.iter().zip(x.0).map(|(a, b)| a - b).collect();
    let y: Vec<f64> = g.1.iter().zip(g.0).map(|(a, b)| a - b).collect();
    let sy = dot(&s, &y);
    if sy > 1e-12 * dot(&s, &s).sqrt() * dot(&y, &y).sqrt() && sy > 0.0 {
        if hist.len() == memory {
            hist.remove(0);
        }
        hist.push((s, y, 1.0 / sy));
    }
}

/// Adds up `work` over `0..n`, in parallel when `threads > 1`, with a result that is
/// bit-identical for every thread count.
///
/// `0..n` is cut into fixed blocks of 2048 items whatever the thread count; `work`
/// returns each block's partial sums, and the partials are added in block order on the
/// calling thread. Threads only decide which thread computes which blocks, never how
/// the floating-point additions are grouped, so a fit (and every label derived from it)
/// does not depend on the machine's core count. The two-level summation also keeps
/// rounding noise in the likelihood small enough for the line search to see real
/// decreases.
pub fn parallel_sum<const K: usize, W>(n: usize, threads: usize, work: W) -> [f64; K]
where
    W: Fn(std::ops::Range<usize>) -> [f64; K] + Sync,
{
    const BLOCK: usize = 2048;
    let blocks = n.div_ceil(BLOCK);
    let block = |b: usize| work(b * BLOCK..((b + 1) * BLOCK).min(n));
    let mut total = [0.0; K];
    let mut add = |part: [f64; K]| total.iter_mut().zip(part).for_each(|(t, p)| *t += p);
    if threads <= 1 || blocks <= 1 {
        (0..blocks).for_each(|b| add(block(b)));
        return total;
    }
    let mut partials = vec![[0.0; K]; blocks];
    parallel_fill(&mut partials, threads, |first, out| {
        for (j, slot) in out.iter_mut().enumerate() {
            *slot = block(first + j);
        }
    });
    partials.into_iter().for_each(add);
    total
}

/// Runs `work(start_row, out_chunk)` over `threads` disjoint chunks of `out`.
pub fn parallel_fill<T: Send, W>(out: &mut [T], threads: usize, work: W)
where
    W: Fn(usize, &mut [T]) + Sync,
{
    let threads = threads.clamp(1, out.len().max(1));
    if threads == 1 {
        work(0, out);
        return;
    }
    let chunk = out.len().div_ceil(threads);
    std::thread::scope(|scope| {
        for (i, part) in out.chunks_mut(chunk).enumerate() {
            let work = &work;
            scope.spawn(move || work(i * chunk, part));
        }
    });
}

/// Customers mapped onto tables of distinct values (whole days make these tiny).
pub(crate) struct Indexed {
    pub xs: Vec<f64>,
    pub days: Vec<f64>,
    /// Per customer: index into `xs`, into `days` for t_x, into `days` for T.
    pub rows: Vec<[u32; 3]>,
}

/// Validates the columns and builds the [`Indexed`] tables.
pub(crate) fn index_customers(x: &[f64], t_x: &[f64], t: &[f64]) -> Result<Indexed, ModelError> {
    for (i, ((&x, &tx), &t)) in x.iter().zip(t_x).zip(t).enumerate() {
        check_observation(Some(i), x, tx, t)?;
    }
    let (xs, xi) = distinct(&[x]);
    let (days, di) = distinct(&[t_x, t]);
    let rows = (0..x.len())
        .map(|i| [xi[0][i], di[0][i], di[1][i]])
        .collect();
    Ok(Indexed { xs, days, rows })
}

/// Sorted distinct values of the columns and each entry's index among them.
fn distinct(cols: &[&[f64]]) -> (Vec<f64>, Vec<Vec<u32>>) {
    const DENSE_LIMIT: f64 = 16_777_216.0;
    let dense = cols
        .iter()
        .all(|c| c.iter().all(|&v| v.fract() == 0.0 && v <= DENSE_LIMIT));
    if dense {
        let max = cols
            .iter()
            .flat_map(|c| c.iter())
            .fold(0.0f64, |m, &v| m.max(v)) as usize;
        let mut slot = vec![u32::MAX; max + 1];
        cols.iter()
            .flat_map(|c| c.iter())
            .for_each(|&v| slot[v as usize] = 0);
        let mut values = Vec::new();
        for (v, s) in slot.iter_mut().enumerate() {
            if *s == 0 {
                *s = values.len() as u32;
                values.push(v as f64);
            }
        }
        let idx = cols
            .iter()
            .map(|c| c.iter().map(|&v| slot[v as usize]).collect())
            .collect();
        (values, idx)
    } else {
        let mut values: Vec<f64> = cols.iter().flat_map(|c| c.iter().copied()).collect();
        values.sort_unstable_by(f64::total_cmp);
        values.dedup();
        let idx = cols
            .iter()
            .map(|c| {
                c.iter()
                    .map(|v| values.partition_point(|w| w < v) as u32)
                    .collect()
            })
            .collect();
        (values, idx)
    }
}

/// Unique `(x, t_x, T)` index triples among the rows that pass `keep`, with counts.
pub(crate) fn count_triples(
    ix: &Indexed,
    keep: impl Fn(&[u32; 3]) -> bool,
) -> Vec<([u32; 3], f64)> {
    let rows = ix.rows.iter().filter(|r| keep(r));
    if ix.xs.len() >= 1 << 21 || ix.days.len() >= 1 << 21 {
        // Too many distinct values to pack: one entry per row, in index order (not the
        // input's row order, which must not change the likelihood's last bits).
        let mut each: Vec<([u32; 3], f64)> = rows.map(|r| (*r, 1.0)).collect();
        each.sort_unstable_by_key(|(r, _)| *r);
        return each;
    }
    let mut keys: Vec<u64> = rows
        .map(|r| (u64::from(r[0]) << 42) | (u64::from(r[1]) << 21) | u64::from(r[2]))
        .collect();
    keys.sort_unstable();
    let mut groups: Vec<([u32; 3], f64)> = Vec::new();
    for k in keys {
        let key = [
            (k >> 42) as u32,
            ((k >> 21) & 0x1f_ffff) as u32,
            (k & 0x1f_ffff) as u32,
        ];
        match groups.last_mut() {
            Some((last, w)) if *last == key => *w += 1.0,
            _ => groups.push((key, 1.0)),
        }
    }
    groups
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lbfgs_minimises_rosenbrock() {
        let m = lbfgs(&[-1.2, 1.0], 500, 1e-9, |x, g| {
            let (a, b) = (1.0 - x[0], x[1] - x[0] * x[0]);
            g[0] = -2.0 * a - 400.0 * x[0] * b;
            g[1] = 200.0 * b;
            a * a + 100.0 * b * b
        })
        .unwrap();
        assert!(m.converged, "{m:?}");
        assert!(
            (m.x[0] - 1.0).abs() < 1e-6 && (m.x[1] - 1.0).abs() < 1e-6,
            "{m:?}"
        );
    }

    #[test]
    fn lbfgs_reports_iteration_cap_and_bad_start() {
        let m = lbfgs(&[-1.2, 1.0], 3, 1e-12, |x, g| {
            g[0] = 2.0 * x[0];
            g[1] = 20.0 * x[1];
            x[0] * x[0] + 10.0 * x[1] * x[1]
        })
        .unwrap();
        assert!(!m.converged && m.iterations == 3);
        assert!(
            lbfgs(&[0.0], 10, 1e-9, |_, g| {
                g[0] = 0.0;
                f64::NAN
            })
            .is_none()
        );
    }

    #[test]
    fn parallel_helpers_cover_every_item() {
        let s = parallel_sum::<2, _>(1001, 3, |r| [r.len() as f64, r.map(|i| i as f64).sum()]);
        assert_eq!(s, [1001.0, 500_500.0]);
        let mut out = vec![0usize; 10];
        parallel_fill(&mut out, 4, |start, part| {
            part.iter_mut()
                .enumerate()
                .for_each(|(i, v)| *v = start + i)
        });
        assert_eq!(out, (0..10).collect::<Vec<_>>());
    }

    /// Regression: the sum was split into one range per thread, so the grouping of the
    /// additions (and the last bits of every fit) changed with the core count.
    #[test]
    fn parallel_sum_is_bit_identical_for_every_thread_count() {
        // Terms of very different sizes, so any regrouping of the additions shows.
        let term = |i: usize| (i as f64 * 0.37).sin() * 10f64.powi((i % 17) as i32 - 8);
        let work = |r: std::ops::Range<usize>| {
            let mut s = [0.0, 0.0];
            for i in r {
                s[0] += term(i);
                s[1] += term(i) * term(i + 1);
            }
            s
        };
        for n in [0, 1, 2047, 2048, 2049, 10_000, 100_003] {
            let one = parallel_sum::<2, _>(n, 1, work);
            for threads in [2, 3, 4, 7, 64] {
                let many = parallel_sum::<2, _>(n, threads, work);
                assert_eq!(
                    one.map(f64::to_bits),
                    many.map(f64::to_bits),
                    "n = {n}, {threads} threads"
                );
            }
        }
    }
}
