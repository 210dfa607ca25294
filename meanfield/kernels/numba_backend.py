"""numba backend: parallel (prange), tiled, fused evaluation of the kernel field on the CPU.

Two strategies, chosen by the input dimension d (``strategy="auto"``):

* ``"fused"`` (small d, where the per-pair arccos dominates): one pass per block of rows computes the cosines
  by a short d-loop, the transcendental part, the row reductions and the gradient contraction, with all
  temporaries in L1-sized buffers; memory O(m d).
* ``"blas"`` (large d, where the two contractions of length d dominate): per tile, the cosines come from a BLAS
  matrix product, a parallel numba pass turns them into the weights (π − θ) c_k and the row reductions in
  place, and a second BLAS product gives the gradient; memory O(m d + tile²).

The arccos is fdlibm's rational approximation (``__ieee754_acos``, within 1 ulp of ``np.arccos`` in the tests),
written with selects only, which LLVM vectorises; ``math.acos`` is a scalar libm call that does not. All kernels use
``error_model="numpy"``: numba's default Python error model puts a zero-division check (a branch) on every
division, which alone keeps these loops scalar (about 3x slower).
"""

from __future__ import annotations

import contextlib
import math
import time

import numba
import numpy as np
from numba import njit, prange
from scipy.special import ndtr

from .._validation import check_positive_int
from ..bivariate import DREZNER_CORRELATION, GENZ_RULES, NEAR_CORRELATION
from .base import check_precision, compiles, register_backend
from .field import finish_relu_sums
from .numpy_backend import NumpyBackend
from .routes import ArcCosine, BivariateReLU

__all__ = ["NumbaBackend", "upper_orthant", "pair_moments_block"]

_PI = math.pi
#: fp32 tiles recompute in fp64 the pairs with θ or π − θ below this angle (radians), where the fp32 cosine's error
#: ~6e-8 (× √d from the product) would move θ by more than ~6e-8 √d / sin θ ≈ 6e-6 at d = 100.
NEAR_ANGLE = 0.1
_FASTMATH = {"contract", "reassoc", "arcp", "nsz"}  # no nnan/ninf: NaN must still propagate to the driver

# fdlibm e_asin.c / e_acos.c: asin(x) = x + x R(x²) on [0, 1/2], R = t pS(t) / qS(t).
_PS0, _PS1, _PS2 = 1.66666666666666657415e-01, -3.25565818622400915405e-01, 2.01212532134862925881e-01
_PS3, _PS4, _PS5 = -4.00555345006794114027e-02, 7.91534994289814532176e-04, 3.47933107596021167570e-05
_QS1, _QS2 = -2.40339491173441421878e00, 2.02094576023350569471e00
_QS3, _QS4 = -6.88283971605453293030e-01, 7.70381505559019352791e-02


def _constants(dtype) -> tuple:
    """The constants of :func:`_acos` and :func:`_pair_terms` as scalars of ``dtype``: a tuple argument makes numba
    compile one specialisation per precision (a Python float literal would promote fp32 arithmetic to fp64)."""
    return tuple(dtype(v) for v in (_PI, 0.0, 0.5, 1.0, 2.0, _PS0, _PS1, _PS2, _PS3, _PS4, _PS5, _QS1, _QS2, _QS3,
                                    _QS4))


_F64, _F32 = _constants(np.float64), _constants(np.float32)


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _acos(c, k):
    """arccos(c) for c in [−1, 1], branch-free (selects only) so that loops over it vectorise; ``k`` from
    :func:`_constants`."""
    pi, half, one, two = k[0], k[2], k[3], k[4]
    x = abs(c)
    big = x > half
    z = (one - x) * half if big else x * x
    s = math.sqrt(z) if big else x
    p = z * (k[5] + z * (k[6] + z * (k[7] + z * (k[8] + z * (k[9] + z * k[10])))))
    q = one + z * (k[11] + z * (k[12] + z * (k[13] + z * k[14])))
    asin_s = s + s * (p / q)
    acos_x = two * asin_s if big else half * pi - asin_s
    return pi - acos_x if c < k[1] else acos_x


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _pair_terms(cosine, k):
    """(π − θ, sin θ, J(θ) = sin θ + (π − θ) cos θ) from a cosine, clipped to [−1, 1]."""
    one = k[3]
    c = min(one, max(-one, cosine))
    pt = k[0] - _acos(c, k)
    s = math.sqrt((one - c) * (one + c))
    return pt, s, s + pt * c


@njit(parallel=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def acos_vectorised(c):
    """Elementwise arccos with the vectorisable approximation (exposed for tests)."""
    out = np.empty_like(c)
    for i in prange(c.shape[0]):
        out[i] = _acos(min(1.0, max(-1.0, c[i])), _F64)
    return out


@njit(parallel=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _fused_field(u_p, n_p, u_s_t, src_t, coef, cn, value, grad, with_grad, row_block, col_block):
    """Fused evaluation; u_s_t, src_t are the sources transposed (d, k) so the inner k-loops are contiguous.

    A block of ``row_block`` rows sweeps the sources in blocks of ``col_block`` columns, so each source block
    is reused from L1/L2 by all rows of the block. Every inner loop runs over a slice indexed from 0: an
    offset index (k0 + kk) makes numba emit a negative-index wraparound select that keeps LLVM from
    vectorising the loop.
    """
    n, d = u_p.shape
    k = coef.shape[0]
    n_blocks = (n + row_block - 1) // row_block
    for ib in prange(n_blocks):
        i0 = ib * row_block
        i1 = min(n, i0 + row_block)
        row = np.empty(col_block)
        acc_v = np.zeros(row_block)
        acc_s = np.zeros(row_block)
        acc_g = np.zeros((row_block, d))
        for k0 in range(0, k, col_block):
            k1 = min(k, k0 + col_block)
            kb = k1 - k0
            coef_b = coef[k0:k1]
            cn_b = cn[k0:k1]
            for r in range(i1 - i0):
                c_row = row[:kb]
                c_row[:] = 0.0
                for dd in range(d):
                    u = u_p[i0 + r, dd]
                    src = u_s_t[dd, k0:k1]
                    for kk in range(kb):
                        c_row[kk] += u * src[kk]
                v = 0.0
                s_acc = 0.0
                for kk in range(kb):
                    pt, s, j = _pair_terms(c_row[kk], _F64)
                    v += cn_b[kk] * j
                    s_acc += cn_b[kk] * s
                    c_row[kk] = coef_b[kk] * pt
                acc_v[r] += v
                acc_s[r] += s_acc
                if with_grad:
                    for dd in range(d):
                        src = src_t[dd, k0:k1]
                        g = 0.0
                        for kk in range(kb):
                            g += c_row[kk] * src[kk]
                        acc_g[r, dd] += g
        for r in range(i1 - i0):
            value[i0 + r] = n_p[i0 + r] * acc_v[r]
            if with_grad:
                for dd in range(d):
                    grad[i0 + r, dd] = acc_g[r, dd] + u_p[i0 + r, dd] * acc_s[r]


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _far(pt, near, pi):
    """Whether π − θ lies farther than ``near`` from 0 and π (the pair stays in the vectorised pass); one test for the
    pass and for the repair's scan. Bitwise, so that fp32 loops over it vectorise."""
    return (pt > near) & (pt < pi - near)


@njit(inline="always", fastmath=_FASTMATH, error_model="numpy")
def _exact_terms(u_row, u_col):
    """:func:`_pair_terms` of two fp64 unit rows, their cosine summed in fp64: the repair of a nearly parallel or
    opposite pair in an fp32 tile, where θ from the fp32 cosine would be off by ~6e-8 / sin θ."""
    c = 0.0
    for t in range(u_row.shape[0]):
        c += u_row[t] * u_col[t]
    return _pair_terms(c, _F64)


@njit(parallel=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _weights_in_place(c_tile, cn, acc_v, acc_s, k, near, u_rows, u_cols, cn_exact, w_cols, grad_rows, with_grad):
    """Turn a tile of cosines into π − θ in place, accumulating the row sums of c_k|s_k| J(θ) and c_k|s_k| sin θ.

    The tile's precision is that of ``c_tile`` (constants ``k`` of the same dtype). Pairs whose π − θ lies within
    ``near`` of 0 or π are left out of the vectorised pass and done wholly in fp64 from the unit rows ``u_rows``,
    ``u_cols`` (:func:`_exact_terms`) and the fp64 coefficients ``cn_exact`` = c_k|s_k|, ``w_cols`` = c_k s_k, their
    gradient term added to ``grad_rows`` and their weight in the tile set to 0; ``near < 0`` (fp64 tiles) repairs
    nothing."""
    rows, cols = c_tile.shape
    pi, zero, one = k[0], k[1], k[3]
    for r in prange(rows):
        row = c_tile[r]
        v = zero
        s_acc = zero
        flagged = zero
        for kk in range(cols):
            pt, s, j = _pair_terms(row[kk], k)
            far = _far(pt, near, pi)
            w = cn[kk] if far else zero
            v += w * j
            s_acc += w * s
            flagged += zero if far else one   # a float counter: an int one keeps fp32 loops scalar
            row[kk] = pt
        acc_v[r] += v
        acc_s[r] += s_acc
        if flagged > zero:
            for kk in range(cols):
                if not _far(row[kk], near, pi):
                    pt, s, j = _exact_terms(u_rows[r], u_cols[kk])
                    acc_v[r] += cn_exact[kk] * j
                    acc_s[r] += cn_exact[kk] * s
                    if with_grad:
                        for t in range(grad_rows.shape[1]):
                            grad_rows[r, t] += pt * w_cols[kk, t]
                    row[kk] = zero


@njit(parallel=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _weights_in_place_symmetric(c_tile, cn_rows, cn_cols, acc_v_rows, acc_s_rows, acc_v_cols, acc_s_cols,
                                n_chunks, k, near, u_rows, u_cols, cn_rows_exact, cn_cols_exact, w_rows, w_cols,
                                grad_rows, grad_cols, with_grad):
    """Off-diagonal tile (I, K) of a self-interaction: replace the cosines by π − θ, and accumulate the
    J and sin θ sums both along rows (weights c_K|s_K|, for the I block) and along columns (weights
    c_I|s_I|, for the K block). Column sums are reduced over per-chunk partials (no write races). Precision and
    the fp64 repair of nearly parallel pairs as in :func:`_weights_in_place`, on both blocks."""
    rows, cols = c_tile.shape
    pi, zero, one = k[0], k[1], k[3]
    # np.empty and plain loops only outside the prange: in a parallel function np.zeros and array expressions are
    # parallel regions of their own, ~40 µs each to start here, which made this kernel cost ~0.4 ms per tile
    part_v = np.empty((n_chunks, cols), c_tile.dtype)
    part_s = np.empty((n_chunks, cols), c_tile.dtype)
    part_g = np.empty((n_chunks, cols if near >= 0 else 0, grad_cols.shape[1]))   # zeroed at a chunk's first repair
    chunk = (rows + n_chunks - 1) // n_chunks
    repaired = np.empty(n_chunks, np.int64)
    for ch in prange(n_chunks):
        pv = part_v[ch]
        ps = part_s[ch]
        for kk in range(cols):
            pv[kk] = zero
            ps[kk] = zero
        repaired[ch] = 0
        for r in range(ch * chunk, min(rows, (ch + 1) * chunk)):
            row = c_tile[r]
            w_r = cn_rows[r]
            v = zero
            s_acc = zero
            flagged = zero
            for kk in range(cols):
                pt, s, j = _pair_terms(row[kk], k)
                far = _far(pt, near, pi)
                j = j if far else zero
                s = s if far else zero
                v += cn_cols[kk] * j
                s_acc += cn_cols[kk] * s
                pv[kk] += w_r * j
                ps[kk] += w_r * s
                flagged += zero if far else one
                row[kk] = pt
            acc_v_rows[r] += v
            acc_s_rows[r] += s_acc
            if flagged > zero:
                if repaired[ch] == 0 and with_grad:
                    part_g[ch] = 0.0   # inside the prange: a plain loop
                repaired[ch] += 1
                for kk in range(cols):
                    if not _far(row[kk], near, pi):
                        pt, s, j = _exact_terms(u_rows[r], u_cols[kk])
                        acc_v_rows[r] += cn_cols_exact[kk] * j
                        acc_s_rows[r] += cn_cols_exact[kk] * s
                        pv[kk] += cn_rows_exact[r] * j
                        ps[kk] += cn_rows_exact[r] * s
                        if with_grad:
                            for t in range(grad_rows.shape[1]):
                                grad_rows[r, t] += pt * w_cols[kk, t]
                                part_g[ch, kk, t] += pt * w_rows[r, t]
                        row[kk] = zero
    for ch in range(n_chunks):
        for kk in range(cols):
            acc_v_cols[kk] += part_v[ch, kk]
            acc_s_cols[kk] += part_s[ch, kk]
        if with_grad and repaired[ch]:
            for kk in range(cols):
                for t in range(grad_cols.shape[1]):
                    grad_cols[kk, t] += part_g[ch, kk, t]


@njit(parallel=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _series_field(b_p, q_p, b_s_t, q_s, coef, wb_t, rows, cols_t, scale, value, grad_b, grad_c, with_grad,
                  row_block, col_block):
    """Mehler series summed over all pairs, fused: per block of rows and block of columns, the correlations by a
    short d-loop, Horner's rule in ρ for every series (the column loop innermost, which vectorises; each column
    coefficient segment is reused by the block's rows while it is in L1), then the row reductions and the gradient
    contraction. rows (S, n, K + 1), cols_t (S, K + 1, k); memory O(S · row_block · col_block) per thread."""
    n, d = b_p.shape
    k = q_s.shape[0]
    n_series, order = rows.shape[0], rows.shape[2] - 1
    n_blocks = (n + row_block - 1) // row_block
    for block in prange(n_blocks):
        i0 = block * row_block
        h = min(n, i0 + row_block) - i0
        rho = np.empty((row_block, col_block))
        acc = np.empty((row_block, n_series, col_block))
        grad_acc = np.zeros((row_block, d))
        v = np.zeros(row_block)
        gq = np.zeros(row_block)
        gc = np.zeros(row_block)
        for j0 in range(0, k, col_block):
            w = min(k, j0 + col_block) - j0
            for r in range(h):
                i = i0 + r
                for jj in range(w):
                    rho[r, jj] = 0.0
                for t in range(d):
                    x = b_p[i, t]
                    for jj in range(w):
                        rho[r, jj] += x * b_s_t[t, j0 + jj]
                for jj in range(w):
                    qq = q_p[i] * q_s[j0 + jj]
                    c = scale * rho[r, jj] / math.sqrt(qq) if qq > 0.0 else 0.0
                    rho[r, jj] = min(1.0, max(-1.0, c))
                for s in range(n_series):
                    lead = rows[s, i, order]
                    for jj in range(w):
                        acc[r, s, jj] = lead * cols_t[s, order, j0 + jj]
            for o in range(order - 1, -1, -1):
                for s in range(n_series):
                    column = cols_t[s, o, j0:j0 + w]
                    for r in range(h):
                        lead = rows[s, i0 + r, o]
                        total, correlation = acc[r, s], rho[r]
                        for jj in range(w):
                            total[jj] = total[jj] * correlation[jj] + lead * column[jj]
            for r in range(h):
                for jj in range(w):
                    v[r] += coef[j0 + jj] * acc[r, 0, jj]
                if with_grad:
                    for t in range(d):
                        total = 0.0
                        for jj in range(w):
                            total += acc[r, 1, jj] * wb_t[t, j0 + jj]
                        grad_acc[r, t] += total
                    for jj in range(w):
                        gq[r] += coef[j0 + jj] * acc[r, 2, jj]
                    if n_series == 4:
                        for jj in range(w):
                            gc[r] += coef[j0 + jj] * acc[r, 3, jj]
        for r in range(h):
            i = i0 + r
            value[i] = v[r]
            if with_grad:
                for t in range(d):
                    grad_b[i, t] = scale * (grad_acc[r, t] + 2.0 * b_p[i, t] * gq[r])
                if n_series == 4:
                    grad_c[i] = gc[r]


_X20, _W20 = (np.ascontiguousarray(v) for v in GENZ_RULES[2])
_SQRT_2PI = math.sqrt(2.0 * _PI)
_CLIP = 40.0


@njit(inline="always", error_model="numpy")
def _ndtr(x):
    return 0.5 * math.erfc(-x / math.sqrt(2.0))


@njit(error_model="numpy")
def _sheppard(h, k, rho):
    """Sheppard's integral of :func:`meanfield.bivariate.upper_orthant` for |ρ| < 0.925, by the 20-point rule at
    every ρ: Genz's 6 and 12 points for |ρ| < 0.3 and < 0.75 are accurate to 1e-16 absolute but lose relative digits
    once max(|h|, |k|) passes ~3 (measured: 1e-11 of the Fréchet bound min(Φ(−h), Φ(−k)) at 5)."""
    nodes, weights = _X20, _W20
    hk, hs = h * k, 0.5 * (h * h + k * k)
    asr = math.asin(rho)
    total = 0.0
    for i in range(nodes.shape[0]):
        sn = math.sin(0.5 * asr * (1.0 + nodes[i]))
        total += weights[i] * math.exp((sn * hk - hs) / ((1.0 - sn) * (1.0 + sn)))
        sn = math.sin(0.5 * asr * (1.0 - nodes[i]))
        total += weights[i] * math.exp((sn * hk - hs) / ((1.0 - sn) * (1.0 + sn)))
    return total * asr / (4.0 * _PI)


@njit(error_model="numpy")
def _plackett(h, k, a2):
    """Genz's integral near |ρ| = 1 (k already negated for ρ < 0), from a² = (1 − ρ)(1 + ρ) > 0."""
    a = math.sqrt(a2)
    hk = h * k
    bs = (h - k) * (h - k)
    c = (4.0 - hk) / 8.0
    d = (12.0 - hk) / 16.0
    total = a * math.exp(-0.5 * (bs / a2 + hk)) * (1.0 - c * (bs - a2) * (1.0 - d * bs / 5.0) / 3.0
                                                   + c * d * a2 * a2 / 5.0)
    if hk > -160.0:
        b = math.sqrt(bs)
        total -= math.exp(-0.5 * hk) * _SQRT_2PI * _ndtr(-b / a) * b * (1.0 - c * bs * (1.0 - d * bs / 5.0) / 3.0)
    half = 0.5 * a
    for i in range(_X20.shape[0]):
        x, w = _X20[i], _W20[i]
        xs = (half * (1.0 + x)) ** 2
        rs = math.sqrt(1.0 - xs)
        total += half * w * (math.exp(-bs / (2.0 * xs) - hk / (1.0 + rs)) / rs
                             - math.exp(-0.5 * (bs / xs + hk)) * (1.0 + c * xs * (1.0 + d * xs)))
        xs = (half * (1.0 - x)) ** 2
        rs = math.sqrt(1.0 - xs)
        total += half * w * math.exp(-0.5 * (bs / xs + hk)) * (
            math.exp(-0.5 * hk * xs / (1.0 + rs) ** 2) / rs - (1.0 + c * xs * (1.0 + d * xs)))
    return total / (2.0 * _PI)


@njit(error_model="numpy")
def _upper_orthant(h, k, rho, one_minus, one_plus):
    """L(h, k; ρ) = P(X > h, Y > k), the scalar form of :func:`meanfield.bivariate.upper_orthant`."""
    if abs(rho) < DREZNER_CORRELATION:
        return _sheppard(h, k, rho) + _ndtr(-h) * _ndtr(-k)
    k_near = -k if rho < 0.0 else k
    a2 = one_minus * one_plus
    integral = _plackett(h, k_near, a2) if a2 > 0.0 else 0.0
    if rho > 0.0:
        return _ndtr(-max(h, k_near)) - integral
    gap = _ndtr(k_near) - _ndtr(h) if h + k_near < 0.0 else _ndtr(-h) - _ndtr(-k_near)   # from the smaller tails
    return max(0.0, gap) + integral


@numba.vectorize(["float64(float64, float64, float64, float64, float64)"], cache=True)
def upper_orthant(h, k, rho, one_minus, one_plus):
    """L(h, k; ρ) = P(X > h, Y > k) compiled (:func:`meanfield.bivariate.upper_orthant`); the fused biased-ReLU
    kernel calls its scalar form."""
    return _upper_orthant(h, k, rho, one_minus, one_plus)


@njit(inline="always", error_model="numpy")
def _standardised(c, s):
    ratio = c / s if s > 0.0 else (_CLIP if c > 0.0 else (-_CLIP if c < 0.0 else 0.0))
    return min(_CLIP, max(-_CLIP, ratio))


@njit(inline="always", error_model="numpy")
def _ratio(num, r):
    if r > 0.0:
        return min(_CLIP, max(-_CLIP, num / r))
    if num == 0.0:
        return 0.0
    return _CLIP if num > 0.0 else -_CLIP


@njit(inline="always", error_model="numpy")
def _moments_given(s, s2, c, c2, h, k, pdf_h, pdf_k, prob, rho, one_minus, one_plus):
    """(K, ∂_pK, ∂_qK, ∂_cK) from P = Φ₂(h, k; ρ) and the per-particle h = c/s, φ(h) (and for the other side)."""
    r = math.sqrt(one_minus * one_plus)
    if rho >= 0.0:
        a_num, b_num = (h - k) + one_minus * k, (k - h) + one_minus * h
        slope = (c2 - s2 * h) + one_minus * (s2 * h) if abs(k) >= _CLIP else s2 * b_num
    else:
        a_num, b_num = (h + k) - one_plus * k, (k + h) - one_plus * h
        slope = (c2 + s2 * h) - one_plus * (s2 * h) if abs(k) >= _CLIP else s2 * b_num
    a_arg, b_arg = _ratio(a_num, r), _ratio(b_num, r)
    pdf_b = math.exp(-0.5 * b_arg * b_arg) / _SQRT_2PI
    cdf_a, cdf_b = _ndtr(a_arg), _ndtr(b_arg)
    value = ((c * c2 + rho * s * s2) * prob + c * s2 * pdf_k * cdf_a + c2 * s * pdf_h * cdf_b
             + s * s2 * r * pdf_h * pdf_b)
    d_c = c2 * prob + rho * s2 * pdf_h * cdf_b + s2 * pdf_k * cdf_a
    d_q = 0.5 * pdf_h * (slope * cdf_b + s2 * r * pdf_b) / s if s > 0.0 else 0.0
    return value, prob, d_q, d_c


@njit(error_model="numpy")
def _relu_pair_moments(s, s2, c, c2, rho, one_minus, one_plus):
    """(K, ∂_pK, ∂_qK, ∂_cK) of E[U⁺V⁺], the scalar form of :func:`meanfield.bivariate.relu_pair_moments`."""
    h, k = _standardised(c, s), _standardised(c2, s2)
    prob = _upper_orthant(-h, -k, rho, one_minus, one_plus)
    pdf_h, pdf_k = math.exp(-0.5 * h * h) / _SQRT_2PI, math.exp(-0.5 * k * k) / _SQRT_2PI
    return _moments_given(s, s2, c, c2, h, k, pdf_h, pdf_k, prob, rho, one_minus, one_plus)


# Sheppard's integral over the column block as 20 elementwise passes (one per node), with an exp and a sin written as
# polynomials and selects only, so that LLVM vectorises each pass over the columns (math.exp and math.sin are scalar
# libm calls): exp by Cody–Waite reduction x = n ln 2 + r, |r| ≤ ln 2/2, Taylor to r¹³ (truncation 4e-18) and 2ⁿ from a
# table; sin on |x| ≤ asin(0.925) < 1.19 by Taylor to x¹⁹ (truncation 8e-19).
_SHEPPARD_T = np.ascontiguousarray(np.concatenate([(1.0 + GENZ_RULES[2][0]) / 2, (1.0 - GENZ_RULES[2][0]) / 2]))
_SHEPPARD_W = np.ascontiguousarray(np.concatenate([GENZ_RULES[2][1], GENZ_RULES[2][1]]))
_POW2 = np.ldexp(1.0, np.arange(-1100, 1024))   # 2ⁿ at n + 1100: |x| ≤ 745 gives −1075 ≤ n ≤ 1023
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10   # fdlibm: n·ln2_hi exact for |n| < 2²⁰
_INV_LN2 = 1.0 / math.log(2.0)


@njit(inline="always", error_model="numpy")
def _exp(x):
    x = min(709.0, max(-745.0, x))
    n = math.floor(x * _INV_LN2 + 0.5)
    r = (x - n * _LN2_HI) - n * _LN2_LO
    p = 1.0 / 6227020800.0
    for coefficient in (1.0 / 479001600.0, 1.0 / 39916800.0, 1.0 / 3628800.0, 1.0 / 362880.0, 1.0 / 40320.0,
                        1.0 / 5040.0, 1.0 / 720.0, 1.0 / 120.0, 1.0 / 24.0, 1.0 / 6.0, 0.5, 1.0, 1.0):
        p = p * r + coefficient
    return p * _POW2[int(n) + 1100]


@njit(inline="always", error_model="numpy")
def _sin(x):
    z = x * x
    p = -1.0 / 121645100408832000.0
    for coefficient in (1.0 / 355687428096000.0, -1.0 / 1307674368000.0, 1.0 / 6227020800.0, -1.0 / 39916800.0,
                        1.0 / 362880.0, -1.0 / 5040.0, 1.0 / 120.0, -1.0 / 6.0):
        p = p * z + coefficient
    return x + x * (z * p)


@njit(inline="always", error_model="numpy")
def _asin(x):
    """asin(x) for |x| < 1 by fdlibm's rational approximation, selects only (the :func:`_acos` constants)."""
    k = _F64
    a = abs(x)
    big = a > 0.5
    z = (1.0 - a) * 0.5 if big else a * a
    s = math.sqrt(z) if big else a
    p = z * (k[5] + z * (k[6] + z * (k[7] + z * (k[8] + z * (k[9] + z * k[10])))))
    q = 1.0 + z * (k[11] + z * (k[12] + z * (k[13] + z * k[14])))
    small = s + s * (p / q)
    value = 0.5 * _PI - 2.0 * small if big else small
    return -value if x < 0.0 else value


@njit(inline="always", error_model="numpy")
def _probabilities(h, k, cdf_h, cdf_k, rho, one_minus, one_plus, asr, total, prob, w):
    """P(U > 0, V > 0) = L(−h, −k; ρ) for the first w entries of the arrays: Sheppard's integral for |ρ| < 0.925 in
    20 elementwise passes over the entries (vectorised), Plackett's near ±1 entry by entry; Φ(h), Φ(k) given."""
    for jj in range(w):
        asr[jj] = _asin(min(DREZNER_CORRELATION, max(-DREZNER_CORRELATION, rho[jj])))
        total[jj] = 0.0
    for node in range(_SHEPPARD_T.shape[0]):
        t_node, w_node = _SHEPPARD_T[node], _SHEPPARD_W[node]
        for jj in range(w):
            sn = _sin(t_node * asr[jj])
            a, b = h[jj], k[jj]
            total[jj] += w_node * _exp((sn * (a * b) - 0.5 * (a * a + b * b)) / ((1.0 - sn) * (1.0 + sn)))
    for jj in range(w):
        if abs(rho[jj]) < DREZNER_CORRELATION:
            prob[jj] = total[jj] * asr[jj] / (4.0 * _PI) + cdf_h[jj] * cdf_k[jj]
        else:
            prob[jj] = _upper_orthant(-h[jj], -k[jj], rho[jj], one_minus[jj], one_plus[jj])


@njit(fastmath={"contract"}, error_model="numpy", cache=True)
def pair_moments_block(s, s2, c, c2, rho, one_minus, one_plus):
    """(n, 4) moments (K, ∂_pK, ∂_qK, ∂_cK) of 1-D arrays of pairs by the fused kernel's own passes
    (:func:`_probabilities`, :func:`_moments_given`): what the tests compare with 40-digit references."""
    n = s.shape[0]
    h, k, cdf_h, cdf_k = np.empty(n), np.empty(n), np.empty(n), np.empty(n)
    for j in range(n):
        h[j], k[j] = _standardised(c[j], s[j]), _standardised(c2[j], s2[j])
        cdf_h[j], cdf_k[j] = _ndtr(h[j]), _ndtr(k[j])
    asr, total, prob = np.empty(n), np.empty(n), np.empty(n)
    _probabilities(h, k, cdf_h, cdf_k, rho, one_minus, one_plus, asr, total, prob, n)
    out = np.empty((n, 4))
    for j in range(n):
        pdf_h, pdf_k = math.exp(-0.5 * h[j] * h[j]) / _SQRT_2PI, math.exp(-0.5 * k[j] * k[j]) / _SQRT_2PI
        out[j] = _moments_given(s[j], s2[j], c[j], c2[j], h[j], k[j], pdf_h, pdf_k, prob[j], rho[j], one_minus[j],
                                one_plus[j])
    return out


@njit(parallel=True, fastmath={"contract"}, error_model="numpy", cache=True)
def _biased_relu_field(u_p, s_p, c_p, h_p, cdf_p, pdf_p, b_p, u_s_t, s_s, c_s, h_s, cdf_s, pdf_s, b_s, coef, scale,
                       near, value, grad, with_grad, block):
    """The field of biased ReLU neurons, fused, per row and block of columns: the cosines by a short d-loop, the
    complement that vanishes from the directions where |ρ| > near (:func:`meanfield.bivariate.pair_correlations`),
    Sheppard's integral for |ρ| < 0.925 in vectorised passes (Plackett's near ±1 per pair), then the moments
    (:func:`_moments_given`) accumulated into the value, the b-gradient κ(Σ c_k ∂_pK s_k + 2 b Σ c_k ∂_qK) and the
    c-gradient Σ c_k ∂_cK. Per-particle h = c/s, Φ(h), φ(h) come precomputed."""
    n, d = b_p.shape
    k = b_s.shape[0]
    for i in prange(n):
        rho = np.empty(block)
        one_minus = np.empty(block)
        one_plus = np.empty(block)
        asr = np.empty(block)
        total = np.empty(block)
        prob = np.empty(block)
        h = h_p[i]
        h_row = np.empty(block)
        cdf_row = np.empty(block)
        for jj in range(block):
            h_row[jj] = h
            cdf_row[jj] = cdf_p[i]
        grad_b = np.zeros(d)
        v, gq, gc = 0.0, 0.0, 0.0
        for j0 in range(0, k, block):
            w = min(block, k - j0)
            for jj in range(w):
                rho[jj] = 0.0
            for t in range(d):
                x = u_p[i, t]
                row = u_s_t[t, j0:j0 + w]
                for jj in range(w):
                    rho[jj] += x * row[jj]
            flagged = 0
            for jj in range(w):
                cos = min(1.0, max(-1.0, rho[jj]))
                rho[jj] = cos
                one_minus[jj] = 1.0 - cos
                one_plus[jj] = 1.0 + cos
                flagged += abs(cos) > near
            if flagged:
                for jj in range(w):
                    cos = rho[jj]
                    if abs(cos) > near:
                        sign = 1.0 if cos > 0.0 else -1.0
                        gap = 0.0
                        for t in range(d):
                            g = u_p[i, t] - sign * u_s_t[t, j0 + jj]
                            gap += g * g
                        small = 0.5 * gap
                        if cos > 0.0:
                            rho[jj], one_minus[jj], one_plus[jj] = 1.0 - small, small, 2.0 - small
                        else:
                            rho[jj], one_minus[jj], one_plus[jj] = small - 1.0, 2.0 - small, small
            _probabilities(h_row, h_s[j0:j0 + w], cdf_row, cdf_s[j0:j0 + w], rho, one_minus, one_plus, asr, total,
                           prob, w)
            for jj in range(w):
                j = j0 + jj
                r = rho[jj]
                kernel, d_p, d_q, d_c = _moments_given(s_p[i], s_s[j], c_p[i], c_s[j], h, h_s[j], pdf_p[i], pdf_s[j],
                                                       prob[jj], r, one_minus[jj], one_plus[jj])
                weight = coef[j]
                v += weight * kernel
                if with_grad:
                    gq += weight * d_q
                    gc += weight * d_c
                    for t in range(d):
                        grad_b[t] += weight * d_p * b_s[j, t]
        value[i] = v
        if with_grad:
            for t in range(d):
                grad[i, t] = scale * (grad_b[t] + 2.0 * b_p[i, t] * gq)
            grad[i, d] = gc


@njit(parallel=True, fastmath=_FASTMATH, error_model="numpy", cache=True)
def _relu_family_values(z, lam, values, slopes):
    """σ(z) = max(z, λz) and σ'(z) (1 above 0, λ below, (1 + λ)/2 at 0) in one parallel pass: the leaky ReLU
    (λ ∈ [0, 1)) and abs (λ = −1), as the units' numpy functions compute them."""
    half = 0.5 * (1.0 + lam)
    for i in prange(z.shape[0]):
        for j in range(z.shape[1]):
            v = z[i, j]
            w = lam * v
            values[i, j] = v if v > w else w
            slopes[i, j] = 1.0 if v > 0 else (lam if v < 0 else half)


class _PhaseClock:
    """Seconds (and flops) per named phase, summed over the calls of ``with clock(name, flops):``; free when off."""

    def __init__(self, on: bool):
        self.on, self.totals = on, {}

    @contextlib.contextmanager
    def __call__(self, name: str, flops: int = 0):
        if not self.on:
            yield
            return
        start = time.perf_counter()
        yield
        entry = self.totals.setdefault(name, {"seconds": 0.0, "flops": 0})
        entry["seconds"] += time.perf_counter() - start
        entry["flops"] += flops


class NumbaBackend(NumpyBackend):
    """CPU backend compiled with numba, parallel over rows; see the module docstring.

    Parameters
    ----------
    strategy : {"auto", "fused", "blas"}
        "auto" picks "fused" for d < ``blas_min_d`` and "blas" otherwise.
    blas_min_d : int
        Crossover dimension (measured by benchmarks/velocity.py on a 2-core AVX-512 machine).
    blas_min_sources : int
        Fewer sources than this (a teacher's neurons) always take the fused loop (in fp64, whatever ``dtype``): one
        parallel pass instead of three BLAS calls and a parallel launch per row block, which cost ~20 ms at
        m = 4096, d = 100 inside a flow (threads woken for each small call).
    tile, panel : int
        Rows and columns of the BLAS strategy's tiles (memory ~ 8 tile × panel bytes); a self-interaction forms the
        diagonal tile-square of each row block and then panels of the columns after it.
    row_block, col_block : int
        Rows per parallel block and sources per inner block of the fused strategy's loop.
    series_rows, series_cols : int
        Rows and sources per block of the Mehler-series sums (:func:`~meanfield.kernels.field.series_field`).
    threads : int, optional
        Number of numba threads (default: all).
    dtype : {"float64", "float32"}
        Precision of the ReLU family's pair sums. "float32" runs the BLAS strategy at every d with fp32 products and
        transcendental pass (twice the SIMD width), sums across tiles in fp64, and recomputes in fp64 the pairs within
        :data:`NEAR_ANGLE` of parallel or opposite, where the fp32 cosine would lose θ; the field comes back in fp64
        with a relative error of about 1e-6 (:data:`~meanfield.kernels.base.FP32_RTOL` is what it promises). Every
        other unit, and biased neurons, stay in fp64.
    rtol : float, optional
        The relative accuracy the caller needs: "float32" is refused when it is below
        :data:`~meanfield.kernels.base.FP32_RTOL`.
    biased_block : int
        Columns per block of the biased-ReLU kernel (its elementwise passes run over a block from L1).
    profile : bool
        Time the phases of the BLAS strategy (cosine GEMMs, transcendental pass, gradient GEMMs) into
        ``last_profile`` at every field (for benchmarks/velocity.py).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> b = mf.init.sign_sphere(64, 5, seed=0).b
    >>> fast, ref = mf.get_backend("numba"), mf.get_backend("numpy")
    >>> bool(np.allclose(fast.field(b, b, np.ones(64), 1.0)[1], ref.field(b, b, np.ones(64), 1.0)[1], atol=1e-12))
    True
    """

    name = "numba"

    def __init__(self, strategy: str = "auto", blas_min_d: int = 16, blas_min_sources: int = 32, tile: int = 512,
                 panel: int = 512,
                 row_block: int = 32, col_block: int = 512, threads: int | None = None, series_rows: int = 8,
                 series_cols: int = 128, dtype: str = "float64", rtol: float | None = None, profile: bool = False,
                 biased_block: int = 256):
        if strategy not in ("auto", "fused", "blas"):
            raise ValueError(f"strategy must be 'auto', 'fused' or 'blas', got {strategy!r}")
        check_precision(dtype, rtol)
        super().__init__()
        self.strategy, self.blas_min_d = strategy, int(blas_min_d)
        self.tile, self.panel = check_positive_int(tile, "tile"), check_positive_int(panel, "panel")
        self.blas_min_sources = int(blas_min_sources)
        self.row_block, self.col_block = int(row_block), int(col_block)
        self.series_rows, self.series_cols = int(series_rows), int(series_cols)
        self.biased_block = check_positive_int(biased_block, "biased_block")
        self.dtype = np.dtype(dtype)
        self.profile = bool(profile)
        #: With ``profile=True``: seconds of each phase of the last BLAS-strategy field (and the flops of its GEMMs).
        self.last_profile: dict = {}
        if threads is not None:
            numba.set_num_threads(int(threads))

    @compiles(ArcCosine)
    def _arc_cosine_field(self, route, points, sources, coef, scale, grad):
        """The ReLU family (:class:`~meanfield.kernels.routes.ArcCosine`: ReLU, leaky ReLU, abs, and pairs of them)
        compiled: the fused loop or the BLAS strategy (module docstring)."""
        same = points is sources
        points = np.ascontiguousarray(points, dtype=np.float64)
        sources = points if same else np.ascontiguousarray(sources, dtype=np.float64)
        coef = np.ascontiguousarray(coef, dtype=np.float64)
        n, d = points.shape
        u_p, n_p = self.unit_rows(points)
        u_s, n_s = (u_p, n_p) if same else self.unit_rows(sources)
        cn = coef * n_s
        k = sources.shape[0]
        few = k < self.blas_min_sources   # a teacher's neurons: one fused pass instead of BLAS calls per row block
        strategy = self.strategy if self.strategy != "auto" else ("fused" if d < self.blas_min_d or few else "blas")
        if strategy == "fused" and (self.dtype == np.float64 or few):
            value = np.empty(n)
            gradient = np.empty((n, d)) if grad else np.empty((0, d))
            _fused_field(u_p, n_p, np.ascontiguousarray(u_s.T), np.ascontiguousarray(sources.T), coef, cn,
                         value, gradient, grad, self.row_block, self.col_block)
        else:
            value, gradient = self._blas_field(u_p, n_p, u_s, sources, coef, cn, grad, same)
        return finish_relu_sums(points, sources, coef, scale, route.linear, route.weight, value,
                                gradient if grad else None)

    def unit_values(self, activation, z):
        """(σ(z), σ'(z)) in one compiled pass for the ReLU family (the elementwise pass of the empirical flow);
        other units by their numpy functions."""
        lam, rho = activation.relu_decomposition or (0.0, 0.0)
        if rho == 0.0 or lam + rho != 1.0:  # max(z, λz) = λz + (1 − λ) relu(z): the leaky ReLU, and abs (λ = −1)
            return super().unit_values(activation, z)
        z = np.ascontiguousarray(z)
        values, slopes = np.empty_like(z), np.empty_like(z)
        _relu_family_values(z, float(lam), values, slopes)
        return values, slopes

    def series_field(self, b_points, q_points, b_sources, q_sources, coef, scale, series, value, grad_b, grad_c,
                     tile_elements=None):
        """The Mehler series of Hermite units compiled and fused (:func:`_series_field`)."""
        d = b_points.shape[1]
        with_grad = grad_b is not None
        rows = np.ascontiguousarray(np.stack(series.rows))
        cols_t = np.ascontiguousarray(np.stack(series.cols_t))
        coef = np.ascontiguousarray(coef, dtype=np.float64)
        _series_field(np.ascontiguousarray(b_points), np.ascontiguousarray(q_points), np.ascontiguousarray(b_sources.T),
                      np.ascontiguousarray(q_sources), coef, np.ascontiguousarray((coef[:, None] * b_sources).T), rows,
                      cols_t, float(scale), value, grad_b if with_grad else np.empty((0, d)),
                      grad_c if grad_c is not None else np.empty(0), with_grad, self.series_rows, self.series_cols)

    @compiles(BivariateReLU)
    def _bivariate_relu_field(self, route, points, sources, coef, scale, grad):
        """Biased ReLU neurons [b | c] (:class:`~meanfield.kernels.routes.BivariateReLU`), compiled and fused
        (:func:`_biased_relu_field`)."""
        same = points is sources
        points = np.ascontiguousarray(points, dtype=np.float64)
        sources = points if same else np.ascontiguousarray(sources, dtype=np.float64)
        root = math.sqrt(scale)

        def side(rows):
            b, c = np.ascontiguousarray(rows[:, :-1]), np.ascontiguousarray(rows[:, -1])
            u, norm = self.unit_rows(b)
            s = root * norm
            h = np.clip(np.divide(c, s, out=np.where(c > 0, _CLIP, np.where(c < 0, -_CLIP, 0.0)), where=s > 0),
                        -_CLIP, _CLIP)
            return u, s, c, h, ndtr(h), np.exp(-0.5 * h * h) / _SQRT_2PI, b

        u_p, s_p, c_p, h_p, cdf_p, pdf_p, b_p = side(points)
        u_s, s_s, c_s, h_s, cdf_s, pdf_s, b_s = (u_p, s_p, c_p, h_p, cdf_p, pdf_p, b_p) if same else side(sources)
        value = np.empty(points.shape[0])
        gradient = np.empty(points.shape) if grad else np.empty((0, points.shape[1]))
        _biased_relu_field(u_p, s_p, c_p, h_p, cdf_p, pdf_p, b_p, np.ascontiguousarray(u_s.T), s_s, c_s, h_s, cdf_s,
                           pdf_s, b_s, np.ascontiguousarray(coef, dtype=np.float64), float(scale), NEAR_CORRELATION,
                           value, gradient, grad, self.biased_block)
        return value, gradient if grad else None

    def _blas_field(self, u_p, n_p, u_s, sources, coef, cn, grad, symmetric):
        """Tiles: cosines by BLAS, weights in place by numba, gradient by BLAS, in the backend's dtype (tile sums
        accumulated in fp64). For a self-interaction (points are the sources) only the tiles on and right of the
        diagonal are formed: θ is symmetric, so tile (I, K) serves both blocks, which halves the first product and the
        transcendental work."""
        n, d = u_p.shape
        k = sources.shape[0]
        work = self.dtype.type
        single = work is np.float32
        constants, near = (_F32, np.float32(NEAR_ANGLE)) if single else (_F64, -1.0)
        rows_w = u_p.astype(work, copy=False)
        cols_w = rows_w if symmetric else u_s.astype(work, copy=False)
        cn_w = cn.astype(work, copy=False)
        exact_weighted = coef[:, None] * sources  # c_k s_k: the gradient is Σ_k (π − θ_jk) c_k s_k + ...
        weighted = exact_weighted.astype(work, copy=False)
        acc_v, acc_s = np.zeros(n), np.zeros(n)
        gradient = np.zeros((n, d) if grad else (0, d))
        tile, panel = self.tile, self.panel
        buf = np.empty((min(tile, n), min(max(tile, panel), k)), dtype=work)
        products = np.empty((max(buf.shape), d), dtype=work)
        n_chunks = numba.get_num_threads()

        clock = _PhaseClock(self.profile)

        def add_product(out, weights, factors):
            with clock("gradient GEMMs", 2 * weights.shape[0] * weights.shape[1] * d):
                np.matmul(weights, factors, out=products[: weights.shape[0]])
                out += products[: weights.shape[0]]

        for i0 in range(0, n, tile):
            i1 = min(n, i0 + tile)
            # symmetric: the diagonal block, then panels of the columns after it; else panels of all columns
            blocks = [(i0, i1)] if symmetric else []
            blocks += [(k0, min(k, k0 + panel)) for k0 in range(i1 if symmetric else 0, k, panel)]
            for k0, k1 in blocks:
                c_tile = buf[: i1 - i0, : k1 - k0]
                with clock("cosine GEMMs", 2 * c_tile.size * d):
                    np.matmul(rows_w[i0:i1], cols_w[k0:k1].T, out=c_tile)
                if symmetric and k0 != i0:
                    with clock("transcendental pass"):
                        _weights_in_place_symmetric(c_tile, cn_w[i0:i1], cn_w[k0:k1], acc_v[i0:i1], acc_s[i0:i1],
                                                    acc_v[k0:k1], acc_s[k0:k1], n_chunks, constants, near,
                                                    u_p[i0:i1], u_s[k0:k1], cn[i0:i1], cn[k0:k1],
                                                    exact_weighted[i0:i1], exact_weighted[k0:k1], gradient[i0:i1],
                                                    gradient[k0:k1], grad)
                    if grad:
                        add_product(gradient[i0:i1], c_tile, weighted[k0:k1])
                        add_product(gradient[k0:k1], c_tile.T, weighted[i0:i1])
                else:
                    with clock("transcendental pass"):
                        _weights_in_place(c_tile, cn_w[k0:k1], acc_v[i0:i1], acc_s[i0:i1], constants, near,
                                          u_p[i0:i1], u_s[k0:k1], cn[k0:k1], exact_weighted[k0:k1], gradient[i0:i1],
                                          grad)
                    if grad:
                        add_product(gradient[i0:i1], c_tile, weighted[k0:k1])
        if self.profile:
            self.last_profile = clock.totals
        if not grad:
            return n_p * acc_v, None
        gradient += u_p * acc_s[:, None]
        return n_p * acc_v, gradient

    def __repr__(self):
        return (f"NumbaBackend(strategy={self.strategy!r}, dtype={self.dtype.name!r}, "
                f"threads={numba.get_num_threads()})")


register_backend("numba", NumbaBackend)
