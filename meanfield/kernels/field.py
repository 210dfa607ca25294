r"""The kernel field, written once for every backend (numpy, torch on CPU or CUDA) against its array functions.

The field of sources s_k with coefficients c_k at points b_j is a sum of Gaussian pair moments
(:mod:`meanfield.kernels.routes`, which chooses how each pair of units computes them). This module holds the tiled
algorithms the routes use: :func:`dual_field` (a degree-1 dual kernel: one matrix product of unit directions per
tile), :func:`moment_field` (any pair moment K(p, q, q′, c, c′) on tiles of pairs) and :func:`series_field` (a
Mehler series of per-particle coefficients); :func:`kernel_field` and :func:`shifted_field` are the field of a unit
without and with biases, through its route.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kernel_field", "shifted_field", "dual_field", "moment_field", "pair_field", "series_field", "PairSides",
           "finish_relu_sums"]

#: Pair-kernel and series tiles hold tile_elements / 2^5 entries: their elementwise passes (tens per tile, or K per
#: series) run from cache instead of memory (measured: GELU at K = 36, m = 4096 on numpy 7.6 s →
#: see docs/guide/backends.md).
PAIR_TILE_SHIFT = 5


def kernel_field(nx, points, sources, coef, scale: float, activation, grad: bool = True,
                 tile_elements: int = 1 << 22):
    """(V, ∇V) at ``points`` (n, d) from ``sources`` (k, d) with coefficients ``coef`` (k,), on the arrays of the
    backend ``nx``, through the route of the unit (or the route given: :func:`~meanfield.kernels.routes.pair_route`);
    ∇V is None when ``grad`` is False.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.activations import RELU
    >>> from meanfield.kernels import get_backend
    >>> b = np.array([[1.0, 0.0]])
    >>> v, g = kernel_field(get_backend("numpy"), b, b, np.ones(1), 1.0, RELU)
    >>> float(v[0]), g[0].tolist()   # K(b, b) = κ|b|²/2, ∇_b K(b, b) = κ b/2 … plus the source side
    (0.5, [0.5, 0.0])
    """
    from .routes import as_route

    return as_route(activation).field(nx, points, sources, coef, scale, grad, tile_elements)


def shifted_field(nx, points, sources, coef, scale: float, activation, grad: bool = True,
                  tile_elements: int = 1 << 22):
    r"""The field of biased neurons: rows of ``points`` and ``sources`` are [b | c] (the bias last), and with
    K(p, q, q', c, c') the Gaussian pair moment of the unit (:mod:`meanfield.kernels.routes`),

    .. math::

        V(b_j, c_j) = Σ_k c_k K(κ⟨b_j, s_k⟩, κ|b_j|², κ|s_k|², c_j, c'_k), \qquad
        ∇_b V = κ [ Σ_k c_k ∂_pK_{jk} s_k + 2 b_j Σ_k c_k ∂_qK_{jk} ], \quad ∂_c V = Σ_k c_k ∂_cK_{jk},

    for inputs x ~ N(0, κI).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.activations import RELU
    >>> from meanfield.kernels import get_backend
    >>> neuron = np.array([[0.0, 1.0]])   # b = 0, c = 1: the constant unit relu(1) = 1
    >>> v, g = shifted_field(get_backend("numpy"), neuron, neuron, np.ones(1), 1.0, RELU)
    >>> float(v[0]), g[0].tolist()
    (1.0, [0.0, 1.0])
    """
    from .routes import as_route

    return as_route(activation, bias=True).field(nx, points, sources, coef, scale, grad, tile_elements)


def dual_field(nx, points, sources, coef, scale: float, dual_parts, grad: bool = True, tile_elements: int = 1 << 22):
    r"""The field of a degree-1 unit from its dual kernel in parts, ``dual_parts(c, nx)`` → (ℓ, w, k̃, k̃′, k̃ − c k̃′)
    with k(c) = ℓ c + w k̃(c) (:meth:`~meanfield.activations.Activation.dual_parts`). With u = b/|b| (0 for b = 0)
    and c_jk = ⟨u_j, u_k⟩:

    .. math::

        V(b_j) = κ |b_j| Σ_k c_k |s_k| k(c_jk), \qquad
        ∇V(b_j) = κ [ u_j Σ_k c_k |s_k| (k − c k')(c_jk) + Σ_k c_k k'(c_jk) s_k ].

    The linear part ℓ c of k is added exactly and w after the sums. Two matrix products per tile of rows (the
    cosines, then the gradient's contraction) around one elementwise pass; rows are tiled so that no more than
    ``tile_elements`` pair entries are held at once. At b_j = 0 this gives ∇V = κ Σ_k c_k k'(0) s_k, the symmetric
    choice σ'(0) = (σ'(0⁺) + σ'(0⁻))/2 for the ReLU family.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.activations import RELU
    >>> from meanfield.kernels import get_backend
    >>> b = np.array([[0.0, 2.0]])
    >>> float(dual_field(get_backend("numpy"), b, b, np.ones(1), 1.0, RELU.dual_parts, grad=False)[0][0])
    2.0
    """
    same = points is sources
    u_p, n_p = nx.unit_rows(points)
    u_s, n_s = (u_p, n_p) if same else nx.unit_rows(sources)
    cn = coef * n_s
    weighted = coef[:, None] * sources
    n = points.shape[0]
    value = nx.empty((n,))
    gradient = nx.empty(tuple(points.shape)) if grad else None
    rows = max(1, tile_elements // max(1, sources.shape[0]))
    linear, w = 0.0, 1.0
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        c = nx.clip(u_p[i0:i1] @ u_s.T, -1.0, 1.0)
        linear, w, k, dk, radial = dual_parts(c, nx)
        value[i0:i1] = n_p[i0:i1] * (k @ cn)
        if grad:
            gradient[i0:i1] = dk @ weighted + u_p[i0:i1] * (radial @ cn)[:, None]
    value *= scale * w
    if grad:
        gradient *= scale * w
    if linear:  # ℓ κ ⟨b_j, Σ_k c_k s_k⟩, exactly
        mean_source = linear * scale * (coef @ sources)
        value += points @ mean_source
        if grad:
            gradient += mean_source
    return value, gradient


class PairSides:
    """The two sides of a field of pair moments: points and sources split into directions b and biases c (rows
    [b | c] with ``bias``, c None without) and their variances q = κ|b|², shared when the points are the sources.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.kernels import get_backend
    >>> sides = PairSides(get_backend("numpy"), np.array([[3.0, 4.0, 0.5]]), None, 2.0, bias=True)
    >>> sides.same, sides.q_points.tolist(), sides.c_points.tolist()
    (True, [50.0], [0.5])
    """

    def __init__(self, nx, points, sources, scale: float, bias: bool):
        self.same = sources is None or points is sources
        self.points, self.bias = points, bool(bias)
        self.b_points, self.c_points = (points[:, :-1], points[:, -1]) if bias else (points, None)
        if self.same:
            self.sources, self.b_sources, self.c_sources = points, self.b_points, self.c_points
        else:
            self.sources = sources
            self.b_sources, self.c_sources = (sources[:, :-1], sources[:, -1]) if bias else (sources, None)
        self.q_points = scale * (self.b_points * self.b_points).sum(axis=1)
        self.q_sources = self.q_points if self.same else scale * (self.b_sources * self.b_sources).sum(axis=1)

    def outputs(self, nx, grad: bool):
        """Fresh (value, gradient, its b columns, its c column): the gradients None without ``grad``, the c column
        None without biases."""
        value = nx.empty((self.points.shape[0],))
        if not grad:
            return value, None, None, None
        gradient = nx.empty(tuple(self.points.shape))
        return (value, gradient, gradient[:, :-1], gradient[:, -1]) if self.bias else (value, gradient, gradient,
                                                                                      None)


def moment_field(nx, sides: PairSides, coef, scale: float, tile_moments, grad: bool = True,
                 tile_elements: int = 1 << 22):
    r"""The field of pair moments over tiles of rows:

    .. math::

        V(b_j) = Σ_k c_k K_{jk}, \qquad ∇_bV(b_j) = κ [ Σ_k c_k ∂_pK_{jk} s_k + 2 b_j Σ_k c_k ∂_qK_{jk} ],
        \quad ∂_cV(b_j) = Σ_k c_k ∂_cK_{jk},

    with (K, ∂_pK, ∂_qK, ∂_cK) = ``tile_moments(sides, i0, i1, nx, scale)`` for the rows i0:i1 against every source
    (∂_cK None without biases; :meth:`~meanfield.kernels.routes.Route.tile_moments`): two matrix products per tile.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.activations import Erf
    >>> from meanfield.kernels import get_backend
    >>> from meanfield.kernels.routes import pair_route
    >>> nx, b = get_backend("numpy"), np.array([[0.5, 0.0]])
    >>> v, g = moment_field(nx, PairSides(nx, b, b, 1.0, False), np.ones(1), 1.0, pair_route(Erf()).tile_moments)
    >>> bool(np.isclose(v[0], 2 / np.pi * np.arcsin(0.5 / 1.5)))   # E erf(b·x)² for x ~ N(0, I)
    True
    """
    value, gradient, grad_b, grad_c = sides.outputs(nx, grad)
    weighted = coef[:, None] * sides.b_sources
    n = sides.points.shape[0]
    rows = max(1, (tile_elements >> PAIR_TILE_SHIFT) // max(1, sides.sources.shape[0]))
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        k, dk_dp, dk_dq, dk_dc = tile_moments(sides, i0, i1, nx, scale)
        value[i0:i1] = k @ coef
        if grad:
            grad_b[i0:i1] = scale * (dk_dp @ weighted + (2.0 * sides.b_points[i0:i1]) * (dk_dq @ coef)[:, None])
            if grad_c is not None:
                grad_c[i0:i1] = dk_dc @ coef
    return value, gradient


def pair_field(nx, points, sources, coef, scale: float, activation, grad: bool = True, tile_elements: int = 1 << 22,
               bias: bool = False):
    r"""The field of a unit given by its closed-form Gaussian pair kernel K(p, q, q')
    (:meth:`~meanfield.activations.Activation.pair_kernel`; with ``bias`` the rows are [b | c] and K(p, q, q', c, c')
    is :meth:`~meanfield.activations.Activation.shifted_pair_kernel`), whatever other form the unit states:
    the :class:`~meanfield.kernels.routes.PairKernel` route.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.activations import Erf
    >>> from meanfield.kernels import get_backend
    >>> b = np.array([[0.5, 0.0]])
    >>> v, g = pair_field(get_backend("numpy"), b, b, np.ones(1), 1.0, Erf())
    >>> bool(np.isclose(v[0], 2 / np.pi * np.arcsin(0.5 / 1.5)))   # E erf(b·x)² for x ~ N(0, I)
    True
    """
    from .routes import PairKernel

    return PairKernel(activation, bias).field(nx, points, sources, coef, scale, grad, tile_elements)


def series_field(nx, b_points, q_points, b_sources, q_sources, coef, scale: float, series, value, grad_b, grad_c,
                 tile_elements: int = 1 << 22) -> None:
    """Sum a :class:`~meanfield.hermite.MehlerSeries` over all pairs into ``value`` (n,), ``grad_b`` (n, d) and
    ``grad_c`` (n,) (gradients None when not wanted), by tiles of rows: the correlations ρ from one matrix product,
    Horner's rule in ρ per series, and the contractions with the sources.

    Examples
    --------
    The GELU field as its unit's series, against the unit's pair kernel summed directly:

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.activations import GELU
    >>> from meanfield.kernels.field import series_field
    >>> unit, nx = GELU(), mf.get_backend("numpy")
    >>> b = mf.init.gaussian(4, 3, seed=0).b
    >>> q = (b ** 2).sum(axis=1)
    >>> value = np.zeros(4)
    >>> series_field(nx, b, q, b, q, np.ones(4), 1.0, unit.mehler_series(q, q), value, None, None)
    >>> direct = unit.pair_kernel(b @ b.T, q[:, None], q[None, :], nx)[0].sum(axis=1)
    >>> bool(np.allclose(value, direct, rtol=1e-9))
    True
    """
    from ..hermite import pair_correlation

    weighted = coef[:, None] * b_sources
    n = b_points.shape[0]
    rows = max(1, (tile_elements >> PAIR_TILE_SHIFT) // max(1, b_sources.shape[0]))
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        p = scale * (b_points[i0:i1] @ b_sources.T)
        sums = series.sums(pair_correlation(p, q_points[i0:i1, None], q_sources[None, :], nx), nx, slice(i0, i1))
        value[i0:i1] = sums[0] @ coef
        if grad_b is not None:
            grad_b[i0:i1] = scale * (sums[1] @ weighted + (2.0 * b_points[i0:i1]) * (sums[2] @ coef)[:, None])
        if grad_c is not None:
            grad_c[i0:i1] = sums[3] @ coef


def finish_relu_sums(points, sources, coef, scale: float, linear: float, weight: float, value, gradient):
    """Apply κ/(2π) and the linear part to the ReLU sums of a compiled kernel (numba, Triton): for
    σ = λz + ρ relu(z), K = ℓ κ ⟨b, b'⟩ + w K_relu with (ℓ, w) = (λ² + λρ, ρ²) (leaky ReLU: (α, (1 − α)²)); ``value``
    holds |b_j| Σ_k c_k|s_k| J(θ_jk) and ``gradient`` Σ_k (π − θ_jk) c_k s_k + u_j Σ_k c_k|s_k| sin θ_jk (None: none).

    Examples
    --------
    >>> import numpy as np
    >>> b = np.array([[1.0, 0.0]])
    >>> value, gradient = finish_relu_sums(b, b, np.ones(1), 1.0, 0.0, 1.0, np.array([np.pi]), np.array([[np.pi, 0.0]]))
    >>> float(value[0]), gradient.tolist()   # K(b, b) = ½ for the ReLU and |b| = 1
    (0.5, [[0.5, 0.0]])
    """
    factor = scale / (2 * np.pi) * weight
    value = value * factor
    gradient = None if gradient is None else gradient * factor
    if linear:
        mean_source = linear * scale * (coef @ sources)
        value = value + points @ mean_source
        if gradient is not None:
            gradient = gradient + mean_source
    return value, gradient
