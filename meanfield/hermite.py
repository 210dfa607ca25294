r"""The normalised Hermite basis h_k = He_k/√k! of L²(N(0, 1)) and the coefficients of a function in it.

For f and a Gaussian argument s g + c (g ~ N(0, 1)), c_k(s, c) = E[f(s g + c) h_k(g)], computed by Gauss–Hermite
quadrature with ``nodes`` points; Mehler's formula E[F(g) G(g')] = Σ_k F_k G_k ρ^k for standard normals with
correlation ρ turns these coefficients into Gaussian pair kernels (:class:`~meanfield.activations.HermiteActivation`,
:class:`~meanfield.mixed.MixedKernel`).
"""

from __future__ import annotations

import functools
import math

import numpy as np

__all__ = ["HermiteBasis", "hermite_basis", "truncated_power_coefficients", "MehlerSeries", "SeriesKernel"]


class HermiteBasis:
    """Gauss–Hermite nodes and weights (probabilists', normalised to sum 1) and the table h_k(x_n), k ≤ max_order.

    Examples
    --------
    >>> import numpy as np
    >>> basis = hermite_basis(60, 8)
    >>> c, energy = basis.coefficients(lambda z: z**2, np.array([1.0]))
    >>> np.round(c[0, :3], 12).tolist(), round(float(energy[0]), 12)   # g² = h_0 + √2 h_2, E g⁴ = 3
    ([1.0, 0.0, 1.414213562373], 3.0)
    """

    def __init__(self, nodes: int, max_order: int):
        x, w = np.polynomial.hermite_e.hermegauss(int(nodes))
        self.x, self.w, self.max_order = x, w / w.sum(), int(max_order)
        table = np.empty((len(x), self.max_order + 1))  # h_k(x_n) by the recurrence He_{k+1} = x He_k − k He_{k−1}
        table[:, 0], table[:, 1] = 1.0, x
        for k in range(1, self.max_order):
            table[:, k + 1] = (x * table[:, k] - math.sqrt(k) * table[:, k - 1]) / math.sqrt(k + 1)
        self.table = table

    def coefficients(self, fn, s, shift=None, orders: int | None = None):
        """c_k(s, c) = E[fn(s g + c) h_k(g)] for k < ``orders`` (all, k ≤ max_order, by default; rows: the entries of
        s), and E[fn(s g + c)²], for arrays of scales s and shifts c (0 when None)."""
        weighted, energy = self.weighted_values(fn, s, shift)
        return self.project(weighted, orders), energy

    def weighted_values(self, fn, s, shift=None):
        """(w_n fn(s x_n + c) for the nodes x_n, E[fn(s g + c)²]): what :meth:`project` turns into coefficients."""
        arguments = np.asarray(s, dtype=np.float64)[:, None] * self.x[None, :]
        if shift is not None:
            arguments += np.asarray(shift, dtype=np.float64)[:, None]
        values = fn(arguments)
        weighted = values * self.w
        return weighted, np.einsum("ij,ij->i", weighted, values)

    def project(self, weighted, orders: int | None = None, start: int = 0):
        """The coefficients of orders start ≤ k < ``orders`` from :meth:`weighted_values` (one matrix product)."""
        return weighted @ self.table[:, start:orders]


@functools.lru_cache(maxsize=8)
def hermite_basis(nodes: int, max_order: int) -> HermiteBasis:
    """One :class:`HermiteBasis` per (nodes, max_order), shared by the units that use it."""
    return HermiteBasis(nodes, max_order)


def horner(pairs, order: int, rho):
    """[Σ_{k ≤ order} L_jk R_ki ρ_ji^k for each (L, Rᵀ) in ``pairs``] on backend arrays: rows of L are the tile's rows,
    columns of Rᵀ (orders × sources, so that each order is one contiguous row) its columns; Horner's rule in ρ, in
    place (memory-bound: one pass per term and series)."""
    sums = [left[:, order:order + 1] * right_t[order][None, :] for left, right_t in pairs]
    for j in range(order - 1, -1, -1):
        for total, (left, right_t) in zip(sums, pairs):
            total *= rho
            total += left[:, j:j + 1] * right_t[j][None, :]
    return sums


def pair_correlation(p, q, q2, nx):
    """ρ = p/√(q q') clipped to [−1, 1], 0 where a variance vanishes (a constant unit is uncorrelated)."""
    qq = q * q2
    live = qq > 0
    return nx.clip(nx.where(live, p / nx.sqrt(nx.where(live, qq, 1.0)), 0.0), -1.0, 1.0)


def _truncated_moment(j: int, a, tail, density):
    """M_j(a) = E[((g − a)⁺)^j] for j = 0 … 3 from Φ(−a) (``tail``) and φ(a) (``density``)."""
    if j == 0:
        return tail
    if j == 1:
        return density - a * tail
    if j == 2:
        return (1.0 + a * a) * tail - a * density
    return (a * a + 2.0) * density - a * (a * a + 3.0) * tail


def truncated_power_coefficients(n: int, s, shift, max_order: int) -> np.ndarray:
    r"""Exact Hermite coefficients E[((s g + c)⁺)ⁿ h_k(g)], k ≤ max_order, n = 0 … 3 (rows: the entries of s, c).

    With a = −c/s and F(g) = ((g − a)⁺)ⁿ, Gaussian integration by parts gives E[F He_k] = E[F^{(k)}]:
    n!/(n−k)! M_{n−k}(a) for k ≤ n (M_j the truncated moments) and n! He_{k−n−1}(a) φ(a) for k > n
    (F^{(n+1)} = n! δ(g − a)); then c_k = sⁿ E[F He_k]/√k!. At s = 0 the unit is the constant (c⁺)ⁿ (½ for the
    step at c = 0). Quadrature would converge slowly at the kink; these are exact.

    Examples
    --------
    >>> import numpy as np
    >>> c = truncated_power_coefficients(1, np.array([1.0]), np.array([0.0]), 4)   # relu(g)
    >>> bool(np.allclose(c[0, :3], [1 / np.sqrt(2 * np.pi), 0.5, 1 / np.sqrt(4 * np.pi)]))
    True
    """
    from scipy.special import ndtr

    s = np.asarray(s, dtype=np.float64).reshape(-1)
    shift = np.broadcast_to(np.asarray(shift, dtype=np.float64), s.shape)
    live = s > 0
    a = np.where(live, -shift / np.where(live, s, 1.0), 0.0)
    tail, density = ndtr(-a), np.exp(-0.5 * a * a) / math.sqrt(2 * math.pi)
    out = np.zeros((s.size, max_order + 1))
    fact_n = math.factorial(n)
    log_fact = np.concatenate([[0.0], np.cumsum(np.log(np.arange(1, max_order + 1)))])
    for k in range(min(n, max_order) + 1):
        out[:, k] = math.factorial(n) / math.factorial(n - k) * _truncated_moment(n - k, a, tail, density) \
            / math.sqrt(math.factorial(k))
    # k > n: n! h_{k−n−1}(a) φ(a) √((k−n−1)!/k!), with h_j = He_j/√j! by its stable recurrence.
    h_prev, h = np.zeros_like(a), np.ones_like(a)
    for j in range(0, max_order - n):
        k = j + n + 1
        out[:, k] = fact_n * h * density * np.exp(0.5 * (log_fact[j] - log_fact[k]))
        h_prev, h = h, (a * h - math.sqrt(j) * h_prev) / math.sqrt(j + 1)
    out *= (s ** n)[:, None]
    constant = np.where(shift > 0, shift**n, np.where(shift == 0, 0.5 if n == 0 else 0.0, 0.0))  # (c⁺)ⁿ
    out[~live] = 0.0
    out[~live, 0] = constant[~live]
    return out


class MehlerSeries:
    r"""A pair kernel and its derivatives as Mehler series over all pairs (j, i) of points and sources:

    .. math::  S_s(j, i) = \sum_{k ≤ K} L_s[j, k]\, R_s[i, k]\, ρ_{ji}^k,

    s = 0: K, 1: ∂_pK, 2: ∂_qK (its ½ included in L_2), and 3: ∂_cK for biased neurons. Built once per evaluation from
    the per-particle coefficients (O(m K)), summed by the backend over pairs (O(m² K))
    (:meth:`meanfield.kernels.base.Backend.series_field`).

    Parameters
    ----------
    rows, cols : list of arrays (n, K + 1) and (k, K + 1)
        The coefficient tables of the points and of the sources, per series (host numpy arrays).

    Examples
    --------
    A one-term series L = R = [[0, 1]] is K(ρ) = ρ; the backend sums it over pairs:

    >>> import numpy as np
    >>> from meanfield.hermite import MehlerSeries
    >>> ones = np.array([[0.0, 1.0]])
    >>> series = MehlerSeries([ones, ones, ones], [ones, ones, ones])
    >>> series.order, series.shifted
    (1, False)
    >>> import meanfield as mf
    >>> [float(s[0, 0]) for s in series.sums(np.array([[0.25]]), mf.get_backend("numpy"))]
    [0.25, 0.25, 0.25]
    """

    def __init__(self, rows, cols):
        self.rows = [np.ascontiguousarray(r) for r in rows]
        self.cols_t = [np.ascontiguousarray(np.asarray(c).T) for c in cols]  # (K + 1, k): one row per order

    @property
    def order(self) -> int:
        return self.rows[0].shape[1] - 1

    @property
    def shifted(self) -> bool:
        """Whether the series carries ∂_cK (biased neurons)."""
        return len(self.rows) == 4

    def sums(self, rho, nx, rows=slice(None)):
        """The series on a tile of correlations ρ (backend arrays), for the points ``rows``."""
        converted = self.__dict__.setdefault("_on_backend", {})  # the column tables converted once per backend
        if id(nx) not in converted:
            converted[id(nx)] = [nx.asarray(right_t) for right_t in self.cols_t]
        pairs = [(nx.asarray(left[rows]), right_t) for left, right_t in zip(self.rows, converted[id(nx)])]
        return horner(pairs, self.order, rho)


class SeriesKernel:
    """A Gaussian pair kernel given by :meth:`mehler_series` (per-particle coefficient tables), evaluated on a tile
    of pairs by :meth:`pair_kernel` and :meth:`shifted_pair_kernel` (the field sums the series over all pairs without
    tiles of moments: :class:`~meanfield.kernels.routes.SeriesRoute`).

    Examples
    --------
    The kernel K(ρ) = ρ of a one-term series:

    >>> import numpy as np
    >>> class Identity(SeriesKernel):
    ...     def mehler_series(self, q, q2, c=None, c2=None):
    ...         one = np.array([[0.0, 1.0]])
    ...         return MehlerSeries([one] * 3, [one] * 3)
    >>> float(Identity().pair_kernel(np.array([[0.5]]), np.array([[1.0]]), np.array([[1.0]]), np)[0][0, 0])
    0.5
    """

    def mehler_series(self, q, q2, c=None, c2=None) -> MehlerSeries:
        """The series for points of variances q (n,) and sources of variances q' (k,), with biases c, c' or None."""
        raise NotImplementedError

    def pair_kernel(self, p, q, q2, nx):
        """(K, ∂_pK, ∂_qK) on a tile: p (n, k), q (n, 1), q′ (1, k) (arrays of ``nx``, or numpy)."""
        return self._tile(p, q, q2, None, None, nx)[:3]

    def shifted_pair_kernel(self, p, q, q2, c, c2, nx):
        """(K, ∂_pK, ∂_qK, ∂_cK) on a tile with biases c (n, 1), c′ (1, k)."""
        return self._tile(p, q, q2, c, c2, nx)

    def _tile(self, p, q, q2, c, c2, nx):
        to_numpy = getattr(nx, "to_numpy", np.asarray)  # the variances go to the host: O(m) numbers

        def host(x, like):  # one entry per row (per column) of the tile, as the variances
            return None if x is None else np.broadcast_to(to_numpy(x), np.shape(to_numpy(like))).reshape(-1)

        series = self.mehler_series(host(q, q), host(q2, q2), host(c, q), host(c2, q2))
        sums = series.sums(pair_correlation(p, q, q2, nx), nx)
        return tuple(sums) if series.shifted else (*sums, None)
