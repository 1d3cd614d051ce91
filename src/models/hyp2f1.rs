//! Special functions for the CLV models: log-gamma, digamma, Gauss's 2F1 and the BG/NBD expectation kernel.
//!
//! Written by hand (no `statrs`) because the models need only these few functions
//! and need them with known accuracy: `ln_gamma`/`digamma` use a shifted Stirling
//! series (absolute error ~1e-15), and [`hyp2f1`] handles the whole real line
//! `z <= 1` with overflow-safe scaling (see its docs).

use super::ModelError;
use std::f64::consts::PI;

/// Stirling-series coefficients `B_2k / (2k (2k-1))`, k = 1..7.
#[rustfmt::skip]
const STIRLING: [f64; 7] = [1.0 / 12.0, -1.0 / 360.0, 1.0 / 1260.0, -1.0 / 1680.0, 1.0 / 1188.0, -691.0 / 360_360.0, 1.0 / 156.0];
/// Digamma asymptotic coefficients `B_2k / (2k)`, k = 1..6.
#[rustfmt::skip]
const DIGAMMA: [f64; 6] = [1.0 / 12.0, -1.0 / 120.0, 1.0 / 252.0, -1.0 / 240.0, 1.0 / 132.0, -691.0 / 32_760.0];

/// `sum_k coef[k] * w^k` for k = 0.. (Horner).
fn poly(coef: &[f64], w: f64) -> f64 {
    coef.iter().rev().fold(0.0, |acc, c| acc * w + c)
}

/// `ln Γ(x)` for `x > 0` (recurrence up to 10, then Stirling's series).
pub fn ln_gamma(x: f64) -> f64 {
    let (mut y, mut prod) = (x, 1.0);
    while y < 10.0 {
        prod *= y;
        y += 1.0;
    }
    let series = poly(&STIRLING, 1.0 / (y * y)) / y;
    (y - 0.5) * y.ln() - y + 0.5 * (2.0 * PI).ln() + series - prod.ln()
}

/// `(ln |Γ(x)|, sign Γ(x))` for any real `x`; the sign is 0 at the poles
/// (`x = 0, -1, -2, ...`), where `1/Γ(x) = 0`.
pub fn ln_gamma_signed(x: f64) -> (f64, f64) {
    if x > 0.0 {
        return (ln_gamma(x), 1.0);
    }
    if x == x.floor() {
        return (f64::INFINITY, 0.0);
    }
    let reduced = x - 2.0 * (x / 2.0).round(); // in [-1, 1], same sin(pi x)
    let s = (PI * reduced).sin().abs();
    let sign = if (x.floor() as i64) % 2 == 0 {
        1.0
    } else {
        -1.0
    };
    (PI.ln() - s.ln() - ln_gamma(1.0 - x), sign)
}

/// Digamma `ψ(x) = d ln Γ(x)/dx` for `x > 0`.
pub fn digamma(x: f64) -> f64 {
    let (mut y, mut acc) = (x, 0.0);
    while y < 10.0 {
        acc -= 1.0 / y;
        y += 1.0;
    }
    let w = 1.0 / (y * y);
    acc + y.ln() - 0.5 / y - w * poly(&DIGAMMA, w)
}

/// A value `mant * exp(ln_scale)`, so that huge intermediate sums cannot overflow.
#[derive(Debug, Clone, Copy)]
struct Scaled {
    mant: f64,
    ln_scale: f64,
}

impl Scaled {
    const fn new(mant: f64, ln_scale: f64) -> Self {
        Self { mant, ln_scale }
    }
    fn to_f64(self) -> f64 {
        if self.mant == 0.0 {
            return 0.0;
        }
        self.mant.signum() * (self.mant.abs().ln() + self.ln_scale).exp()
    }
    fn add(self, o: Scaled) -> Scaled {
        if self.mant == 0.0 {
            return o;
        }
        if o.mant == 0.0 {
            return self;
        }
        let s = self.ln_scale.max(o.ln_scale);
        let mant = self.mant * (self.ln_scale - s).exp() + o.mant * (o.ln_scale - s).exp();
        Scaled { mant, ln_scale: s }
    }
    fn mul_ln(self, sign: f64, ln_abs: f64) -> Scaled {
        Scaled::new(self.mant * sign, self.ln_scale + ln_abs)
    }
}

fn is_nonpositive_integer(v: f64) -> bool {
    v <= 0.0 && v == v.floor()
}

fn undefined(name: &'static str, value: f64, problem: &'static str) -> ModelError {
    ModelError::InvalidParameter {
        name,
        value,
        problem,
    }
}

/// Gauss hypergeometric function `2F1(a, b; c; z)` for real arguments and `z <= 1`.
///
/// * `0 <= z <= 0.9`: the Maclaurin series, summed with a running log-scale so
///   that large intermediate terms cannot overflow;
/// * `0.9 < z < 1`: the `z -> 1 - z` connection formula (Abramowitz & Stegun
///   15.3.6). When `c - a - b` is within 1e-3 of an integer `m` the two halves of
///   that formula cancel catastrophically, so the function is evaluated at
///   `c - a - b = m ± 1e-3, m ± 2e-3` and interpolated with a cubic (2F1 is
///   analytic in `c`; relative error ~1e-11 instead of the 1e-14 elsewhere);
/// * `z = 1`: Gauss's theorem (needs `c - a - b > 0`);
/// * `z < 0`: Pfaff's transformation onto `z / (z - 1)` in `(0, 1)`.
///
/// Errors: non-finite arguments, `z > 1` (branch cut), `c` a non-positive
/// integer (pole), a divergent `z = 1` value, or a result beyond f64.
pub fn hyp2f1(a: f64, b: f64, c: f64, z: f64) -> Result<f64, ModelError> {
    for (name, v) in [
        ("hyp2f1 a", a),
        ("hyp2f1 b", b),
        ("hyp2f1 c", c),
        ("hyp2f1 z", z),
    ] {
        if !v.is_finite() {
            return Err(undefined(name, v, "is not a finite number"));
        }
    }
    let value = scaled(a, b, c, z)?.to_f64();
    super::finite(value, "hyp2f1", || {
        format!("2F1({a}, {b}; {c}; {z}) overflows f64")
    })
}

fn scaled(a: f64, b: f64, c: f64, z: f64) -> Result<Scaled, ModelError> {
    let terminating = is_nonpositive_integer(a) || is_nonpositive_integer(b);
    if z == 0.0 {
        return Ok(Scaled::new(1.0, 0.0));
    }
    if z > 1.0 {
        return Err(undefined(
            "hyp2f1 z",
            z,
            "is above 1, on the branch cut; the real 2F1 is undefined there",
        ));
    }
    if is_nonpositive_integer(c) && !(terminating && a.max(b).min(0.0) > c) {
        return Err(undefined(
            "hyp2f1 c",
            c,
            "is a non-positive integer: 2F1 has a pole there",
        ));
    }
    if terminating {
        return series(a, b, c, z);
    }
    if z < 0.0 {
        let w = z / (z - 1.0);
        return Ok(scaled(a, c - b, c, w)?.mul_ln(1.0, -a * (-z).ln_1p()));
    }
    if z == 1.0 {
        let d = c - a - b;
        if d <= 0.0 {
            return Err(undefined(
                "hyp2f1 c - a - b",
                d,
                "is <= 0, so 2F1 diverges at z = 1",
            ));
        }
        return Ok(gamma_ratio(&[c, d], &[c - a, c - b]));
    }
    if z <= 0.9 {
        return series(a, b, c, z);
    }
    let d = c - a - b;
    let m = d.round();
    const H: f64 = 1e-3;
    if (d - m).abs() < H {
        // Cubic Lagrange interpolation in c through c - a - b = m - 2H, m - H, m + H, m + 2H.
        let nodes = [-2.0, -1.0, 1.0, 2.0];
        let s = (d - m) / H;
        let mut v = 0.0;
        for (i, &k) in nodes.iter().enumerate() {
            let w: f64 = nodes
                .iter()
                .enumerate()
                .filter(|(j, _)| *j != i)
                .map(|(_, &o)| (s - o) / (k - o))
                .product();
            v += w * connection(a, b, a + b + m + k * H, z)?.to_f64();
        }
        return Ok(Scaled::new(v, 0.0));
    }
    connection(a, b, c, z)
}

/// `Γ(n1) Γ(n2) / (Γ(d1) Γ(d2))` as a scaled value (0 if a denominator is at a pole).
fn gamma_ratio(num: &[f64; 2], den: &[f64; 2]) -> Scaled {
    let mut ln = 0.0;
    let mut sign = 1.0;
    for &v in num {
        let (l, s) = ln_gamma_signed(v);
        ln += l;
        sign *= s;
    }
    for &v in den {
        let (l, s) = ln_gamma_signed(v);
        if s == 0.0 {
            return Scaled::new(0.0, 0.0);
        }
        ln -= l;
        sign *= s;
    }
    Scaled::new(sign, ln)
}

/// A&S 15.3.6 for `0.9 < z < 1` and non-integer `c - a - b`.
fn connection(a: f64, b: f64, c: f64, z: f64) -> Result<Scaled, ModelError> {
    let d = c - a - b;
    let w = 1.0 - z;
    let first = gamma_ratio(&[c, d], &[c - a, c - b]);
    let first = if first.mant == 0.0 {
        first
    } else {
        mul(first, series(a, b, 1.0 - d, w)?)
    };
    let second = gamma_ratio(&[c, -d], &[a, b]).mul_ln(1.0, d * w.ln());
    let second = if second.mant == 0.0 {
        second
    } else {
        mul(second, series(c - a, c - b, 1.0 + d, w)?)
    };
    Ok(first.add(second))
}

fn mul(x: Scaled, y: Scaled) -> Scaled {
    Scaled::new(x.mant * y.mant, x.ln_scale + y.ln_scale)
}

/// Maclaurin series with rescaling; converges for `|z| < 1` or terminates.
fn series(a: f64, b: f64, c: f64, z: f64) -> Result<Scaled, ModelError> {
    const RESCALE: f64 = 1e250;
    let ln_rescale = RESCALE.ln();
    let (mut term, mut sum, mut ln_scale) = (1.0f64, 1.0f64, 0.0f64);
    let mut small_in_a_row = 0;
    for n in 0..200_000u32 {
        let nf = f64::from(n);
        let ratio = (a + nf) * (b + nf) / ((c + nf) * (nf + 1.0)) * z;
        term *= ratio;
        sum += term;
        if term == 0.0 {
            return Ok(Scaled::new(sum, ln_scale));
        }
        if sum.abs() > RESCALE || term.abs() > RESCALE {
            sum /= RESCALE;
            term /= RESCALE;
            ln_scale += ln_rescale;
        }
        if term.abs() <= 1e-17 * sum.abs() && ratio.abs() < 1.0 {
            small_in_a_row += 1;
            if small_in_a_row >= 2 {
                return Ok(Scaled::new(sum, ln_scale));
            }
        } else {
            small_in_a_row = 0;
        }
    }
    Err(ModelError::NotFinite {
        context: "hyp2f1",
        detail: format!("the series for 2F1({a}, {b}; {c}; {z}) did not converge in 200000 terms"),
    })
}

/// BG/NBD kernel `G = E[Y(t) | x, t_x, T] / P(alive | x, t_x, T)` with `u = t/(alpha + T)`.
///
/// FHL (2005) eq. 10 writes `G = C/(a-1) * [1 - (1-z)^(r+x) 2F1(r+x, b+x; C; z)]`
/// with `C = a+b+x-1`, `z = u/(1+u)`. Euler's transformation turns
/// `(1-z)^(r+x) 2F1(r+x, b+x; C; z)` into `(1-z)^(a-1) 2F1(a+b-1-r, a-1; C; z)`, whose
/// parameters do not grow with `x` (no overflow), and the `(a-1)` factor of every
/// series term cancels the `1/(a-1)` analytically (no blow-up at `a = 1`):
///
/// `G = C * expm1((1-a) ln(1+u))/(1-a) - (1+u)^(1-a) * sum_{n>=1} (a+b-1-r)_n (a)_(n-1) / ((a+b+x)_(n-1) n!) z^n`.
///
/// That series is used when `z <= 0.9` and it provably keeps >= 11 digits
/// (its largest term is checked against the result). Otherwise (z near 1, or
/// extreme `r`, `a`, `b` from a degenerate fit) `G` comes from its integral form
/// `G = ∫ p^(a-2) (1-p)^(b+x-1) [1 - (1+p u)^-(r+x)] dp / B(a, b+x)`, all terms
/// positive, by tanh-sinh quadrature in log space, split at the mode of the
/// Beta weight so that sharp peaks sit at an end point.
pub fn bgnbd_kernel(r: f64, a: f64, b: f64, x: f64, u: f64) -> Result<f64, ModelError> {
    if u <= 0.0 {
        return Ok(0.0);
    }
    let z = u / (1.0 + u);
    let series = if z <= 0.9 {
        kernel_series(r, a, b, x, u, z)
    } else {
        None
    };
    let g = series.map_or_else(|| kernel_quadrature(r, a, b, x, u), Ok)?;
    let g = super::finite(g, "BG/NBD expected purchases", || {
        format!("r={r}, a={a}, b={b}, x={x}, u={u}")
    })?;
    Ok(g.max(0.0))
}

/// The Euler-transformed series, or `None` if it would lose more than 5 digits
/// to cancellation or need more than 3000 terms.
fn kernel_series(r: f64, a: f64, b: f64, x: f64, u: f64, z: f64) -> Option<f64> {
    let ell = u.ln_1p();
    let big_c = a + b + x - 1.0;
    let c0 = a + b - 1.0 - r;
    let h = if a == 1.0 {
        ell
    } else {
        ((1.0 - a) * ell).exp_m1() / (1.0 - a)
    };
    let (mut term, mut sum) = (c0 * z, c0 * z);
    let mut biggest = term.abs();
    let mut n = 1.0;
    while term != 0.0 {
        let ratio = (c0 + n) * (a + n - 1.0) / ((big_c + n) * (n + 1.0)) * z;
        term *= ratio;
        sum += term;
        biggest = biggest.max(term.abs());
        n += 1.0;
        if term.abs() <= 1e-17 * sum.abs() && ratio.abs() < 1.0 {
            break;
        }
        if n > 3000.0 {
            return None;
        }
    }
    let scale = ((1.0 - a) * ell).exp();
    let g = big_c * h - scale * sum;
    let worst = (big_c * h).abs().max(scale * biggest);
    (g.is_finite() && worst.is_finite() && worst <= 1e5 * g.abs()).then_some(g)
}

/// `ln σ(y) = -ln(1 + e^-y)`, exact in both tails.
fn ln_sigmoid(y: f64) -> f64 {
    if y >= 0.0 {
        -(-y).exp().ln_1p()
    } else {
        y - y.exp().ln_1p()
    }
}

fn kernel_quadrature(r: f64, a: f64, b: f64, x: f64, u: f64) -> Result<f64, ModelError> {
    let (big_a, bx) = (r + x, b + x);
    let ln_beta = ln_gamma(a) + ln_gamma(bx) - ln_gamma(a + bx);
    // Rounding in the exponent (a ln p, ln B, ...) sets a noise floor on huge parameters.
    let tol = 1e-11 + 1e-14 * (a + bx + ln_beta.abs());
    // The end pieces [0, p0] and [1 - q0, 1] are integrated analytically to first
    // order (error ~1e-16 of the piece): with a or b + x tiny they hold mass spread
    // over more orders of magnitude than any quadrature reaches.
    let p0 = 1e-8 / 1f64.max((bx - 1.0).abs()).max((big_a + 1.0) * u);
    let q0 = 1e-8 / 1f64.max((a - 2.0).abs()).max(big_a * u);
    let end_piece = |k: f64, ln_len: f64| (k * ln_len - k.ln() - ln_beta).exp(); // len^k / (k B)
    let c1 = -(bx - 1.0) - 0.5 * (big_a + 1.0) * u; // integrand ~ A u p^(a-1) (1 + c1 p) near 0
    let low = big_a * u * (end_piece(a, p0.ln()) + c1 * end_piece(a + 1.0, p0.ln()));
    let bracket1 = -(-big_a * u.ln_1p()).exp_m1(); // 1 - (1+u)^-A
    let slope1 = -(a - 2.0) * bracket1 - big_a * u * (-(big_a + 1.0) * u.ln_1p()).exp();
    let high = bracket1 * end_piece(bx, q0.ln()) + slope1 * end_piece(bx + 1.0, q0.ln());
    // Middle: p = lo + w σ(π sinh t) and 1 - p = rest + w σ(-π sinh t), rest = 1 - lo - w exactly.
    let piece = |lo: f64, w: f64, rest: f64| -> Result<f64, ModelError> {
        let ln_w = w.ln();
        let f = |t: f64| -> f64 {
            let y = PI * t.sinh();
            let (ls_pos, ls_neg) = (ln_sigmoid(y), ln_sigmoid(-y));
            let p = lo + w * ls_pos.exp();
            let (ln_p, ln_q) = (p.ln(), (rest + w * ls_neg.exp()).ln());
            let pu = p * u;
            // g = [1 - (1+pu)^-A] / p, with its small-p limit.
            let g = if pu < 1e-8 {
                big_a * u * (1.0 - 0.5 * (big_a + 1.0) * pu)
            } else {
                -(-big_a * pu.ln_1p()).exp_m1() / p
            };
            let ln_weight = ln_w + (PI * t.cosh()).ln() + ls_pos + ls_neg;
            ((a - 1.0) * ln_p + (bx - 1.0) * ln_q + ln_weight - ln_beta).exp() * g
        };
        // Sum f over t = dir*k*h for k = 1, 1+step, ..., walking out until terms vanish.
        let side_sum = |h: f64, step: f64, dir: f64| -> f64 {
            let (mut s, mut k) = (0.0, 1.0);
            while k * h <= 9.0 {
                let v = f(dir * k * h);
                s += v;
                if k * h > 3.0 && v <= 1e-18 * s.abs() {
                    break;
                }
                k += step;
            }
            s
        };
        let mut h = 0.5;
        let mut sum = f(0.0) + side_sum(h, 1.0, 1.0) + side_sum(h, 1.0, -1.0);
        let mut estimate = h * sum;
        for _ in 0..9 {
            h /= 2.0;
            sum += side_sum(h, 2.0, 1.0) + side_sum(h, 2.0, -1.0);
            let next = h * sum;
            if (next - estimate).abs() <= tol * next.abs() {
                return Ok(next);
            }
            estimate = next;
        }
        Err(ModelError::NotFinite {
            context: "BG/NBD expected purchases",
            detail: format!("quadrature did not converge for r={r}, a={a}, b={b}, x={x}, u={u}"),
        })
    };
    // Split at the mode of p^(a-1) (1-p)^(b+x-1) when it is inside, so a sharp peak sits at an end.
    let mode = (a - 1.0) / (a + bx - 2.0);
    let middle = if a > 1.0 && bx > 1.0 && mode > 1e-3 && mode < 1.0 - 1e-3 {
        piece(p0, mode - p0, 1.0 - mode)? + piece(mode, 1.0 - mode - q0, q0)?
    } else {
        piece(p0, 1.0 - p0 - q0, q0)?
    };
    Ok(low + middle + high)
}

#[cfg(test)]
#[path = "hyp2f1_tests.rs"]
mod tests;
