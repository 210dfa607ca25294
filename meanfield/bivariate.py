r"""Gaussian integrals of biased ReLU units: Owen's T function, the bivariate normal distribution function and the
moments E[U⁺V⁺] of a non-centred bivariate normal, written once against a backend's array functions.

Owen's T function is

.. math::  T(h, a) = \frac{1}{2π} \int_0^a \frac{e^{-h²(1 + x²)/2}}{1 + x²}\, dx,

computed here for |a| ≤ 1 by a 20-point Gauss–Legendre rule (the integrand is analytic on a neighbourhood of [0, 1]
reaching ±i: about 1e-16 absolute, checked against ``scipy.special.owens_t``) and for |a| > 1 through Owen's identity
T(h, a) = ½[Φ(h)Φ(−ah) + Φ(ah)Φ(−h)] − T(ah, 1/a) (a > 0; T is even in h and odd in a). The bivariate normal
distribution function is then (Owen 1956)

.. math::  Φ_2(h, k; ρ) = ½[Φ(h) + Φ(k)] − T(h, a_h) − T(k, a_k) − β, \quad
           a_h = \frac{k − ρh}{h\sqrt{1 − ρ²}}, \; a_k = \frac{h − ρk}{k\sqrt{1 − ρ²}},

β = ½ when hk < 0 or (hk = 0 and h + k < 0), else 0; at h = k = 0 both T's are atan((1 − ρ)/√(1 − ρ²))/(2π), and
at ρ = ±1 the limits Φ(min(h, k)) and (Φ(h) + Φ(k) − 1)⁺ are used.

References: D. B. Owen, "Tables for computing bivariate normal probabilities", Ann. Math. Statist. 27 (1956);
S. Rosenbaum, "Moments of a truncated bivariate normal distribution", JRSS B 23 (1961).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["owens_t", "bivariate_normal_cdf", "relu_moments", "GAUSS_LEGENDRE"]

_N = 20
_x, _w = np.polynomial.legendre.leggauss(_N)
#: The 20-point Gauss–Legendre rule on [0, 1] (nodes, weights) of Owen's T for |a| ≤ 1.
GAUSS_LEGENDRE = ((_x + 1.0) / 2.0, _w / 2.0)
_SQRT_2PI = math.sqrt(2.0 * math.pi)
_CLIP = 40.0  # |h| beyond which Φ(h) is 0 or 1 to double precision: standardised means are clipped to it


def _t_small(h, a, nx):
    """T(h, a) for 0 ≤ a ≤ 1 by the Gauss–Legendre rule (elementwise on backend arrays)."""
    nodes, weights = GAUSS_LEGENDRE
    half_h2 = 0.5 * h * h
    total = 0.0 * a
    for x, w in zip(nodes.tolist(), weights.tolist()):
        one_plus = 1.0 + (a * x) * (a * x)
        total = total + (w / (2.0 * math.pi)) * nx.exp(-half_h2 * one_plus) / one_plus
    return a * total


def owens_t(h, a, nx):
    r"""Owen's T(h, a) elementwise on the arrays of the backend ``nx`` (the quadrature of the module docstring;
    the numpy backend uses ``scipy.special.owens_t`` instead; ``kernels.numba_backend.owens_t`` compiles it).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.kernels import get_backend
    >>> nx = get_backend("torch")
    >>> float(owens_t(nx.asarray(np.array(0.0)), nx.asarray(np.array(1.0)), nx))   # atan(1)/(2π)
    0.125
    """
    h = nx.abs(h)
    sign = nx.where(a < 0, -1.0, 1.0)
    a = nx.abs(a)
    small = a <= 1.0
    direct = _t_small(h, nx.where(small, a, 0.0), nx)
    g = h * nx.where(small, 1.0, a)
    inverse = nx.where(small, 0.0, 1.0 / nx.where(small, 1.0, a))
    phi_h, phi_g = nx.ndtr(h), nx.ndtr(g)
    reflected = 0.5 * (phi_h * nx.ndtr(-g) + phi_g * nx.ndtr(-h)) - _t_small(g, inverse, nx)
    at_zero = nx.arctan(a) / (2.0 * math.pi)  # h = 0, where a h is 0 · ∞ for a = ∞
    return sign * nx.where(h == 0.0, at_zero, nx.where(small, direct, reflected))


def _safe_divide(num, den, nx):
    return num / nx.where(den == 0.0, 1.0, den)


def bivariate_normal_cdf(h, k, rho, nx):
    r"""Φ₂(h, k; ρ) = P(X ≤ h, Y ≤ k) for standard normals X, Y with correlation ρ, elementwise (module docstring).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.kernels import get_backend
    >>> p = bivariate_normal_cdf(np.array(0.0), np.array(0.0), np.array(0.5), get_backend("numpy"))
    >>> round(float(p), 15)   # ¼ + asin(ρ)/(2π) = 1/3
    0.333333333333333
    """
    r = nx.sqrt((1.0 - rho) * (1.0 + rho))
    live = r > 0.0
    r_live = nx.where(live, r, 1.0)
    origin = (h == 0.0) & (k == 0.0)
    a_origin = (1.0 - rho) / r_live
    a_h = nx.where(origin, a_origin, _infinite_ratio(k - rho * h, h * r_live, nx))
    a_k = nx.where(origin, a_origin, _infinite_ratio(h - rho * k, k * r_live, nx))
    beta = nx.where((h * k < 0.0) | ((h * k == 0.0) & (h + k < 0.0)), 0.5, 0.0)
    phi_h, phi_k = nx.ndtr(h), nx.ndtr(k)
    value = 0.5 * (phi_h + phi_k) - nx.owens_t(h, a_h) - nx.owens_t(k, a_k) - beta
    parallel = nx.where(h < k, phi_h, phi_k)
    antiparallel = nx.where(phi_h + phi_k > 1.0, phi_h + phi_k - 1.0, 0.0)
    return nx.where(live, value, nx.where(rho > 0.0, parallel, antiparallel))


def _infinite_ratio(num, den, nx):
    """num/den, with ±∞ (the sign of num, + for 0/0) where den = 0: the slope a of Owen's T at h = 0."""
    return nx.where(den == 0.0, nx.where(num < 0.0, -math.inf, math.inf), _safe_divide(num, den, nx))


def _pdf(x, nx):
    return nx.exp(-0.5 * x * x) / _SQRT_2PI


def _standardised(c, s, nx):
    """c/s, clipped to ±40; for s = 0 (a constant pre-activation c) ±40 by the sign of c, 0 for c = 0."""
    ratio = nx.where(s > 0.0, _safe_divide(c, s, nx), nx.where(c > 0.0, _CLIP, nx.where(c < 0.0, -_CLIP, 0.0)))
    return nx.clip(ratio, -_CLIP, _CLIP)


def _over_r(num, r, nx):
    """num/r, with its limit ±40 (0 for 0/0) where r = √(1 − ρ²) = 0."""
    limit = nx.where(num > 0.0, _CLIP, nx.where(num < 0.0, -_CLIP, 0.0))
    return nx.where(r > 0.0, num / nx.where(r > 0.0, r, 1.0), limit)


def relu_moments(p, q, q2, c, c2, nx):
    r"""K = E[U⁺V⁺] for jointly Gaussian (U, V) with means (c, c'), variances (q, q') and covariance p, with
    ∂K/∂p, ∂K/∂q and ∂K/∂c (backend arrays that broadcast).

    With s = √q, h = c/s, k = c'/s', ρ = p/(s s'), r = √(1 − ρ²), A = (h − ρk)/r, B = (k − ρh)/r and P = Φ₂(h, k; ρ):

    .. math::

        K &= (cc' + p) P + c s' φ(k) Φ(A) + c' s φ(h) Φ(B) + s s' r φ(h) φ(B), \\
        ∂_p K &= P, \qquad ∂_c K = E[1_{U>0} V⁺] = c' P + ρ s' φ(h) Φ(B) + s' φ(k) Φ(A), \\
        ∂_q K &= ½ E[δ(U) V⁺] = \frac{φ(h) s'}{2 s} [(k − ρh) Φ(B) + r φ(B)]

    (Price's theorem and the heat equation; Rosenbaum 1961 for K). A zero-variance side is the constant c: there
    K = c⁺ E[V⁺] and the gradient takes σ'(0) = ½ at c = 0; ∂_q K is set to 0 at s = 0 (it multiplies b = 0).

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
    rho = nx.clip(nx.where(both, _safe_divide(p, s * s2, nx), 0.0), -1.0, 1.0)
    r = nx.sqrt((1.0 - rho) * (1.0 + rho))
    h, k = _standardised(c, s, nx), _standardised(c2, s2, nx)
    # U = s X + c > 0 ⟺ −X < h, and (−X, −Y) has correlation ρ: P(U > 0, V > 0) = Φ₂(h, k; ρ).
    prob = bivariate_normal_cdf(h, k, rho, nx)
    a_arg, b_arg = _over_r(h - rho * k, r, nx), _over_r(k - rho * h, r, nx)
    pdf_h, pdf_k, pdf_b = _pdf(h, nx), _pdf(k, nx), _pdf(b_arg, nx)
    cdf_a, cdf_b = nx.ndtr(a_arg), nx.ndtr(b_arg)
    value = (c * c2 + p) * prob + c * s2 * pdf_k * cdf_a + c2 * s * pdf_h * cdf_b + s * s2 * r * pdf_h * pdf_b
    d_c = c2 * prob + rho * s2 * pdf_h * cdf_b + s2 * pdf_k * cdf_a
    d_q = nx.where(s > 0.0, _safe_divide(0.5 * pdf_h * s2 * ((k - rho * h) * cdf_b + r * pdf_b), s, nx), 0.0)
    return value, prob, d_q, d_c
