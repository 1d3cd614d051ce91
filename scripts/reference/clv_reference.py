#!/usr/bin/env python3
"""Independent reference values for src/models (BG/NBD, Gamma-Gamma, 2F1).

Every quantity is computed straight from the papers' formulas with
scipy.special (gammaln, betaln, hyp2f1), NOT from the Rust code's rearranged
forms, so the unit tests in src/models/*.rs can compare against it:

  * Fader, Hardie & Lee (2005) "Counting your customers the easy way":
    likelihood (eq. 6), P(alive), E[X(t)] (eq. 9), E[Y(t)|x, t_x, T] (eq. 10).
  * Fader & Hardie (2013) "The Gamma-Gamma model of monetary value".

If mpmath is installed, each hypergeometric-based value is also recomputed at
40 digits and the largest relative disagreement is printed (a sanity check on
scipy itself: 2.6e-11 at worst). Two sections lean on mpmath when it is there:
the large-u rows print mpmath's value should scipy be more than 1e-9 off (it
never was), and the degenerate-parameter rows (a or b ~1e-5) come from mpmath,
where scipy's hyp2f1 is not trustworthy.

Needs: pip install scipy (mpmath optional: pip install mpmath).
Usage: python3 scripts/reference/clv_reference.py
"""
import math

import numpy as np
from scipy.special import betaln, gammaln, hyp2f1, psi

try:
    import mpmath

    mpmath.mp.dps = 40
except ImportError:  # the scipy values are the reference; mpmath only double-checks
    mpmath = None

BG_PARAMS = [
    # (r, alpha [days], a, b): CDNOW-like (FHL 2005 in days), a > 1, a close to 1
    (0.243, 30.9, 0.793, 2.426),
    (1.5, 12.0, 2.2, 5.0),
    (0.7, 45.0, 1.001, 3.0),
]
CUSTOMERS = [  # (x, t_x, T)
    (0, 0, 100),
    (0, 0, 2),
    (1, 30, 200),
    (4, 150, 300),
    (10, 400, 410),
    (25, 60, 700),
    (120, 690, 700),
]
HORIZONS = [30.0, 365.0]


def bg_loglik(r, al, a, b, x, tx, T):
    common = gammaln(r + x) - gammaln(r) + r * math.log(al) - betaln(a, b)
    l1 = betaln(a, b + x) - (r + x) * math.log(al + T)
    if x == 0:
        return common + l1
    l2 = betaln(a + 1, b + x - 1) - (r + x) * math.log(al + tx)
    return common + np.logaddexp(l1, l2)


def p_alive(r, al, a, b, x, tx, T):
    if x == 0:
        return 1.0
    return 1.0 / (1.0 + a / (b + x - 1) * ((al + T) / (al + tx)) ** (r + x))


def cond_exp(t, r, al, a, b, x, tx, T, f=hyp2f1, mp=False):
    z = t / (al + T + t)
    lead = (a + b + x - 1) / (a - 1)
    if mp:
        m = mpmath
        r, al, a, b, t = (m.mpf(v) for v in (r, al, a, b, t))
        z = t / (al + T + t)
        lead = (a + b + x - 1) / (a - 1)
        br = 1 - ((al + T) / (al + T + t)) ** (r + x) * m.hyp2f1(r + x, b + x, a + b + x - 1, z)
        pa = 1 if x == 0 else 1 / (1 + a / (b + x - 1) * ((al + T) / (al + tx)) ** (r + x))
        return lead * br * pa
    br = 1 - ((al + T) / (al + T + t)) ** (r + x) * f(r + x, b + x, a + b + x - 1, z)
    return lead * br * p_alive(r, al, a, b, x, tx, T)


def new_customer(t, r, al, a, b):
    return (a + b - 1) / (a - 1) * (1 - (al / (al + t)) ** r * hyp2f1(r, b, a + b - 1, t / (al + t)))


def gg_loglik(p, q, v, x, m):
    return (gammaln(p * x + q) - gammaln(p * x) - gammaln(q) + q * math.log(v)
            + (p * x - 1) * math.log(m) + p * x * math.log(x) - (p * x + q) * math.log(v + x * m))


def gg_cond(p, q, v, x, m):
    return (q - 1) / (p * x + q - 1) * (v * p / (q - 1)) + (p * x) / (p * x + q - 1) * m


def main():
    worst = 0.0
    print("# BG/NBD: r, alpha, a, b | x, t_x, T | loglik, p_alive, E[Y(30)], E[Y(365)]")
    for (r, al, a, b) in BG_PARAMS:
        for (x, tx, T) in CUSTOMERS:
            ll = bg_loglik(r, al, a, b, x, tx, T)
            pa = p_alive(r, al, a, b, x, tx, T)
            ce = [cond_exp(t, r, al, a, b, x, tx, T) for t in HORIZONS]
            if mpmath is not None:
                for t, v in zip(HORIZONS, ce):
                    ref = float(cond_exp(t, r, al, a, b, x, tx, T, mp=True))
                    worst = max(worst, abs(v - ref) / abs(ref))
            print(f"({r}, {al}, {a}, {b}, {x}.0, {tx}.0, {T}.0, {float(ll)!r}, {float(pa)!r}, {float(ce[0])!r}, {float(ce[1])!r}),")
    print("# large u = t/(alpha+T) (z > 0.9: quadrature branch): r, alpha, a, b, x, t_x, T, t, E[Y(t)]")
    for (r, al, a, b) in [(0.243, 3.0, 0.793, 2.426), (2.0, 1.0, 0.3, 0.4), (0.5, 2.0, 1.001, 8.0)]:
        for (x, tx, T, t) in [(0, 0, 0, 365.0), (3, 5, 6, 365.0), (40, 20, 20, 1000.0)]:
            v = cond_exp(t, r, al, a, b, x, tx, T)
            if mpmath is not None:
                ref = float(cond_exp(t, r, al, a, b, x, tx, T, mp=True))
                worst = max(worst, abs(v - ref) / abs(ref))
                v = ref if abs(v - ref) > 1e-9 * abs(ref) else v
            print(f"({r}, {al}, {a}, {b}, {x}.0, {tx}.0, {T}.0, {t}, {float(v)!r}),")
    print("# degenerate-fit parameters (tiny a, tiny b): r, alpha, a, b, x, t_x, T, t, E[Y(t)]")
    print("# (mpmath at 40 digits when installed: scipy's hyp2f1 is not reliable this far out)")
    for (r, al, a, b, x, tx, T, t) in [(0.67, 55.5, 2.7e-6, 1.44e5, 0, 0, 120, 365.0),
                                       (0.5, 20.0, 2.0, 1e-5, 0, 0, 3, 365.0),
                                       (0.5, 20.0, 3e-6, 2e4, 4, 90, 100, 365.0)]:
        v = cond_exp(t, r, al, a, b, x, tx, T, mp=mpmath is not None)
        print(f"({r}, {al}, {a}, {b}, {x}.0, {tx}.0, {T}.0, {t}, {float(v)!r}),")
    print("# new customer E[X(t)]: r, alpha, a, b, t, value")
    for (r, al, a, b) in BG_PARAMS:
        for t in [1.0, 30.0, 365.0]:
            print(f"({r}, {al}, {a}, {b}, {t}, {float(new_customer(t, r, al, a, b))!r}),")
    print("# Gamma-Gamma: p, q, v, x, m, loglik, E[M|x,m]")
    for (p, q, v) in [(6.0, 4.0, 15.0), (0.5, 1.5, 200.0)]:
        for (x, m) in [(1, 20.0), (5, 35.5), (30, 12.25)]:
            print(f"({p}, {q}, {v}, {x}.0, {m}, {float(gg_loglik(p, q, v, x, m))!r}, {float(gg_cond(p, q, v, x, m))!r}),")
    print("# hyp2f1(a, b, c, z)")
    cases = [(0.5, 1.5, 2.5, 0.3), (1.2, 3.4, 5.6, 0.85), (0.25, 2.5, 1.5, 0.95), (0.25, 2.5, 1.5, 0.99),
             (2.0, 3.0, 7.5, 0.999), (1.5, 2.5, 4.0, 0.97), (1.5, 2.5, 4.000001, 0.97), (0.7, 1.3, 2.0, 0.995),
             (20.0, 21.0, 15.0, 0.6), (1.5, 2.0, 3.3, -0.5), (0.8, 1.1, 2.7, -4.0), (-3.0, 2.0, 1.5, 0.7),
             (1.5, 0.5, 3.0, 1.0)]
    for (a, b, c, z) in cases:
        v = float(hyp2f1(a, b, c, z))
        if mpmath is not None:
            ref = float(mpmath.hyp2f1(a, b, c, z))
            worst = max(worst, abs(v - ref) / abs(ref))
        print(f"({a}, {b}, {c}, {z}, {float(v)!r}),")
    print("# ln_gamma(x), digamma(x)")
    for x in [1e-3, 0.5, 1.0, 2.5, 7.3, 12.0, 150.5]:
        print(f"({x}, {float(gammaln(x))!r}, {float(psi(x))!r}),")
    if mpmath is not None:
        print(f"# largest relative scipy-vs-mpmath difference: {worst:.2e}")


if __name__ == "__main__":
    main()
