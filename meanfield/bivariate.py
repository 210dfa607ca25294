r"""Gaussian integrals of biased ReLU units: the bivariate normal distribution function and the moments E[U⁺V⁺] of a
non-centred bivariate normal with their derivatives, written once against a backend's array functions and accurate
at every correlation, ρ → ±1 included.

The correlation enters through ρ and its complements 1 − ρ and 1 + ρ, each with a small *relative* error: for
neurons the complements are |u ∓ u′|²/2 of the unit directions (:func:`pair_correlations`), never 1 ∓ ⟨u, u′⟩, so
that a neuron with itself has ρ = 1 exactly and nearly parallel neurons keep the digits of their angle.

The upper orthant probability L(h, k; ρ) = P(X > h, Y > k) of standard normals with correlation ρ is Genz's (2004)
adaptation of Drezner and Wesolowsky (1990):

* |ρ| < 0.925: L = Φ(−h)Φ(−k) + (1/2π) ∫_0^{asin ρ} exp(−(h² + k² − 2hk sin θ)/(2 cos²θ)) dθ, by 20-point
  Gauss–Legendre (Genz takes 6 and 12 points for |ρ| below 0.3 and 0.75, enough for 1e-16 absolute; they lose
  relative digits in the tails, once max(|h|, |k|) passes ~3);
* |ρ| ≥ 0.925: with k → −k for ρ < 0, a² = (1 − ρ)(1 + ρ) from the complements, b² = (h − k)², the integral over
  x = √(1 − ρ'²) ∈ [0, a] of Plackett's formula, whose singular part is integrated in closed form (a second-order
  expansion in x² of exp(−hk/(1 + √(1 − x²)))/√(1 − x²)) and whose smooth remainder is a 20-point Gauss–Legendre sum;
  then L = Φ(−max(h, k)) − I for ρ > 0 and L = (Φ(−h) − Φ(k))⁺ + I for ρ < 0. At ρ = ±1 exactly I = 0.

About 1e-16 absolute (against 40-digit quadrature, tests/test_bias_accuracy.py). References: A. Genz, "Numerical
computation of rectangular bivariate and trivariate normal and t probabilities", Statistics and Computing 14 (2004);
Z. Drezner and G. O. Wesolowsky, J. Statist. Comput. Simul. 35 (1990); S. Rosenbaum, "Moments of a truncated bivariate
normal distribution", JRSS B 23 (1961).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["upper_orthant", "bivariate_normal_cdf", "relu_moments", "relu_pair_moments", "pair_correlations",
           "GENZ_RULES", "DREZNER_CORRELATION", "NEAR_CORRELATION"]


def _half_rule(points: int):
    nodes, weights = np.polynomial.legendre.leggauss(points)
    return nodes[: points // 2], weights[: points // 2]  # nodes in (−1, 0); the rule is symmetric


#: Genz's Gauss–Legendre rules of 6, 12 and 20 points, as (nodes in (−1, 0), weights) of their symmetric halves
#: (the 20-point one is used throughout).
GENZ_RULES = tuple(_half_rule(n) for n in (6, 12, 20))
#: |ρ| from which :func:`upper_orthant` integrates Plackett's formula near ±1 instead of Sheppard's.
DREZNER_CORRELATION = 0.925
#: |⟨u, u′⟩| above which :func:`pair_correlations` recomputes 1 ∓ ρ from the directions (below it the cosine's
#: absolute error of a few ulps costs the moments less than a few ulps: ∂Φ₂/∂ρ ≤ 1/(2π√(1 − ρ²))).
NEAR_CORRELATION = 0.5
_TWO_PI = 2.0 * math.pi
_SQRT_2PI = math.sqrt(_TWO_PI)
_CLIP = 40.0  # |h| beyond which Φ(h) is 0 or 1 and φ(h) is 0 to double precision: standardised means are clipped


def _safe(den, nx):
    return nx.where(den == 0.0, 1.0, den)


def _sheppard(h, k, rho, nx):
    """∫_0^{asin ρ} exp(−(h² + k² − 2hk sin θ)/(2cos²θ)) dθ / (2π) for |ρ| < 0.925 (20-point rule)."""
    nodes, weights = GENZ_RULES[2]
    hk, hs = h * k, 0.5 * (h * h + k * k)
    asr = nx.arcsin(rho)
    total = 0.0 * asr
    for x, w in zip(nodes.tolist(), weights.tolist()):
        for t in (1.0 + x, 1.0 - x):
            sn = nx.sin((0.5 * t) * asr)
            total = total + w * nx.exp((sn * hk - hs) / ((1.0 - sn) * (1.0 + sn)))
    return total * asr / (2.0 * _TWO_PI)


def _plackett(h, k, one_minus, one_plus, nx):
    """Genz's integral I near |ρ| = 1 (k already negated for ρ < 0), from a² = (1 − ρ)(1 + ρ); 0 where a = 0."""
    nodes, weights = GENZ_RULES[2]
    a2 = one_minus * one_plus
    live = a2 > 0.0
    a2 = nx.where(live, a2, 1.0)
    a = nx.sqrt(a2)
    hk = h * k
    bs = (h - k) * (h - k)
    c = (4.0 - hk) / 8.0
    d = (12.0 - hk) / 16.0
    total = a * nx.exp(-0.5 * (bs / a2 + hk)) * (1.0 - c * (bs - a2) * (1.0 - d * bs / 5.0) / 3.0
                                                 + c * d * a2 * a2 / 5.0)
    b = nx.sqrt(bs)
    # exp(−hk/2) overflows for hk < −160, where the term it multiplies (with Φ(−b/a), b ≥ |h| + |k|) underflows
    tail = nx.exp(-0.5 * nx.where(hk > -160.0, hk, 0.0)) * _SQRT_2PI * nx.ndtr(-b / a) * b * (
        1.0 - c * bs * (1.0 - d * bs / 5.0) / 3.0)
    total = total - nx.where(hk > -160.0, tail, 0.0)
    half = 0.5 * a
    for x, w in zip(nodes.tolist(), weights.tolist()):
        xs = (half * (1.0 + x)) ** 2
        rs = nx.sqrt(1.0 - xs)
        total = total + half * w * (nx.exp(-bs / (2.0 * xs) - hk / (1.0 + rs)) / rs
                                    - nx.exp(-0.5 * (bs / xs + hk)) * (1.0 + c * xs * (1.0 + d * xs)))
        xs = (half * (1.0 - x)) ** 2
        rs = nx.sqrt(1.0 - xs)
        total = total + half * w * nx.exp(-0.5 * (bs / xs + hk)) * (
            nx.exp(-0.5 * hk * xs / (1.0 + rs) ** 2) / rs - (1.0 + c * xs * (1.0 + d * xs)))
    return nx.where(live, total / _TWO_PI, 0.0)


def upper_orthant(h, k, rho, one_minus, one_plus, nx):
    r"""L(h, k; ρ) = P(X > h, Y > k) for standard normals X, Y with correlation ρ, elementwise on backend arrays that
    broadcast, from ρ and its complements 1 − ρ, 1 + ρ (Genz's method, module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.kernels import get_backend
    >>> nx = get_backend("numpy")
    >>> rho = np.array([0.5, 1.0])
    >>> upper_orthant(np.zeros(2), np.zeros(2), rho, 1.0 - rho, 1.0 + rho, nx).round(15).tolist()  # ¼ + asin ρ/(2π)
    [0.333333333333333, 0.5]
    """
    far = nx.abs(rho) < DREZNER_CORRELATION
    negative = rho < 0.0
    inner = _sheppard(h, k, nx.where(far, rho, 0.0), nx) + nx.ndtr(-h) * nx.ndtr(-k)
    if bool(far.all()):  # no pair near ±1 (most tiles off the diagonal): Plackett's integral is not needed
        return inner
    k_near = nx.where(negative, -k, k)
    integral = _plackett(h, k_near, nx.where(far, 1.0, one_minus), nx.where(far, 1.0, one_plus), nx)
    parallel = nx.ndtr(-nx.where(h > k_near, h, k_near)) - integral
    # P(h < X < −k') = Φ(−h) − Φ(−k') from the tails that do not round to 1
    lower = h + k_near < 0.0
    gap = nx.where(lower, nx.ndtr(k_near) - nx.ndtr(h), nx.ndtr(-h) - nx.ndtr(-k_near))
    opposite = nx.maximum(gap, 0.0) + integral
    return nx.where(far, inner, nx.where(negative, opposite, parallel))


def bivariate_normal_cdf(h, k, rho, nx, one_minus=None, one_plus=None):
    r"""Φ₂(h, k; ρ) = P(X ≤ h, Y ≤ k) = L(−h, −k; ρ), elementwise (:func:`upper_orthant`); the complements 1 ∓ ρ are
    formed from ρ unless given.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.kernels import get_backend
    >>> p = bivariate_normal_cdf(np.array(0.0), np.array(0.0), np.array(0.5), get_backend("numpy"))
    >>> round(float(p), 15)   # ¼ + asin(ρ)/(2π) = 1/3
    0.333333333333333
    """
    one_minus = 1.0 - rho if one_minus is None else one_minus
    one_plus = 1.0 + rho if one_plus is None else one_plus
    return upper_orthant(-h, -k, rho, one_minus, one_plus, nx)


def _pdf(x, nx):
    return nx.exp(-0.5 * x * x) / _SQRT_2PI


def _standardised(c, s, nx):
    """c/s, clipped to ±40; for s = 0 (a constant pre-activation c) ±40 by the sign of c, 0 for c = 0."""
    ratio = nx.where(s > 0.0, c / _safe(s, nx), nx.where(c > 0.0, _CLIP, nx.where(c < 0.0, -_CLIP, 0.0)))
    return nx.clip(ratio, -_CLIP, _CLIP)


def _over_r(num, r, nx):
    """num/r, with its limit ±40 (0 for 0/0) where r = √(1 − ρ²) = 0, clipped to ±40."""
    limit = nx.where(num > 0.0, _CLIP, nx.where(num < 0.0, -_CLIP, 0.0))
    return nx.clip(nx.where(r > 0.0, num / _safe(r, nx), limit), -_CLIP, _CLIP)


def relu_pair_moments(s, s2, c, c2, rho, one_minus, one_plus, nx):
    r"""K = E[U⁺V⁺] for jointly Gaussian (U, V) with means (c, c'), standard deviations (s, s') and correlation ρ
    (given with its complements 1 − ρ and 1 + ρ), with ∂K/∂p, ∂K/∂q and ∂K/∂c (p = ρss', q = s²): backend arrays that
    broadcast.

    With h = c/s, k = c'/s', r = √((1 − ρ)(1 + ρ)), A = (h − ρk)/r, B = (k − ρh)/r and P = Φ₂(h, k; ρ):

    .. math::

        K &= (cc' + p) P + c s' φ(k) Φ(A) + c' s φ(h) Φ(B) + s s' r φ(h) φ(B), \\
        ∂_p K &= P, \qquad ∂_c K = E[1_{U>0} V⁺] = c' P + ρ s' φ(h) Φ(B) + s' φ(k) Φ(A), \\
        ∂_q K &= ½ E[δ(U) V⁺] = \frac{φ(h) s'}{2 s} [(k − ρh) Φ(B) + r φ(B)]

    (Price's theorem and the heat equation; Rosenbaum 1961 for K). The numerators h − ρk are formed as
    (h − k) + (1 − ρ)k for ρ ≥ 0 and (h + k) − (1 + ρ)k for ρ < 0, which do not cancel as ρ → ±1. A zero-variance
    side is the constant c: there K = c⁺ E[V⁺] and the gradient takes σ'(0) = ½ at c = 0; ∂_q K is set to 0 at
    s = 0 (it multiplies b = 0).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.kernels import get_backend
    >>> one, zero = np.array(1.0), np.array(0.0)
    >>> k, dp, dq, dc = relu_pair_moments(one, one, zero, zero, one, zero, 2 * one, get_backend("numpy"))
    >>> float(k), float(dp)   # E relu(g)² = ½, P(g > 0) = ½
    (0.5, 0.5)
    """
    h, k = _standardised(c, s, nx), _standardised(c2, s2, nx)
    prob = upper_orthant(-h, -k, rho, one_minus, one_plus, nx)
    r = nx.sqrt(one_minus * one_plus)
    positive = rho >= 0.0
    a_num = nx.where(positive, (h - k) + one_minus * k, (h + k) - one_plus * k)
    b_num = nx.where(positive, (k - h) + one_minus * h, (k + h) - one_plus * h)
    a_arg, b_arg = _over_r(a_num, r, nx), _over_r(b_num, r, nx)
    pdf_h, pdf_k, pdf_b = _pdf(h, nx), _pdf(k, nx), _pdf(b_arg, nx)
    cdf_a, cdf_b = nx.ndtr(a_arg), nx.ndtr(b_arg)
    value = ((c * c2 + rho * s * s2) * prob + c * s2 * pdf_k * cdf_a + c2 * s * pdf_h * cdf_b
             + s * s2 * r * pdf_h * pdf_b)
    d_c = c2 * prob + rho * s2 * pdf_h * cdf_b + s2 * pdf_k * cdf_a
    # s'(k − ρh) as s'·(the numerator of B), consistent with B (a self-pair's k − h is exactly 0); from c' itself
    # where k is clipped at ±40 (h only is clipped where φ(h) = 0)
    clipped = nx.abs(k) >= _CLIP
    slope = nx.where(clipped, nx.where(positive, (c2 - s2 * h) + one_minus * (s2 * h),
                                       (c2 + s2 * h) - one_plus * (s2 * h)), s2 * b_num)
    d_q = nx.where(s > 0.0, 0.5 * pdf_h * (slope * cdf_b + s2 * r * pdf_b) / _safe(s, nx), 0.0)
    return value, prob, d_q, d_c


def relu_moments(p, q, q2, c, c2, nx):
    r"""(K, ∂K/∂p, ∂K/∂q, ∂K/∂c) of :func:`relu_pair_moments` from the covariance p and the variances q, q', with
    ρ = p/√(qq') (0 where a variance is 0). ρ formed this way carries an absolute error of a few ulps, which costs the
    moments digits as |ρ| → 1; the field of biased neurons takes ρ and 1 ∓ ρ from the directions instead
    (:func:`pair_correlations`).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.kernels import get_backend
    >>> k, dp, dq, dc = relu_moments(*(np.array(v) for v in (1.0, 1.0, 1.0, 0.0, 0.0)), get_backend("numpy"))
    >>> float(k), float(dp)   # E relu(g)² = ½, P(g > 0) = ½
    (0.5, 0.5)
    """
    s, s2 = nx.sqrt(q), nx.sqrt(q2)
    both = (s > 0.0) & (s2 > 0.0)
    rho = nx.clip(nx.where(both, p / _safe(s * s2, nx), 0.0), -1.0, 1.0)
    return relu_pair_moments(s, s2, c, c2, rho, 1.0 - rho, 1.0 + rho, nx)


def pair_correlations(u_rows, u_cols, nx, near: float = NEAR_CORRELATION):
    r"""(ρ, 1 − ρ, 1 + ρ) of every pair of unit rows (zero rows: ρ = 0), from their Gram matrix, and where
    |ρ| > ``near`` with the complement that vanishes recomputed from the directions: 1 − ρ = |u − u′|²/2 (ρ > 0) or
    1 + ρ = |u + u′|²/2 (ρ < 0), and ρ itself from it. A row paired with itself gets ρ = 1 exactly.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.kernels import get_backend
    >>> u = np.array([[1.0, 0.0], [np.cos(1e-9), np.sin(1e-9)]])
    >>> rho, one_minus, one_plus = pair_correlations(u, u, get_backend("numpy"))
    >>> float(rho[0, 0]), float(one_minus[0, 0]), bool(np.isclose(one_minus[0, 1], 5e-19, rtol=1e-12))
    (1.0, 0.0, True)
    """
    rho = nx.clip(u_rows @ u_cols.T, -1.0, 1.0)
    one_minus, one_plus = 1.0 - rho, 1.0 + rho
    all_rows, all_cols = nx.nonzero(nx.abs(rho) > near)
    chunk = max(1, (1 << 20) // max(1, u_rows.shape[1]))  # gathered pairs held at once: 8 MiB of directions
    for start in range(0, all_rows.shape[0], chunk):
        rows, cols = all_rows[start:start + chunk], all_cols[start:start + chunk]
        positive = rho[rows, cols] > 0.0
        gap = u_rows[rows] - nx.where(positive, 1.0, -1.0)[:, None] * u_cols[cols]
        small = 0.5 * (gap * gap).sum(axis=1)  # the complement that vanishes, with a small relative error
        one_minus[rows, cols] = nx.where(positive, small, 2.0 - small)
        one_plus[rows, cols] = nx.where(positive, 2.0 - small, small)
        rho[rows, cols] = nx.where(positive, 1.0 - small, small - 1.0)
    return rho, one_minus, one_plus
