r"""The kernel field, written once for every backend (numpy, torch on CPU or CUDA) against its array functions.

For points b_j, sources s_k with coefficients c_k and an activation σ of degree 1 with dual kernel k
(:mod:`meanfield.activations`), with u = b/|b| (0 for b = 0) and c_jk = ⟨u_j, u_k⟩:

.. math::

    V(b_j) = κ |b_j| Σ_k c_k |s_k| k(c_jk), \qquad
    ∇V(b_j) = κ [ u_j Σ_k c_k |s_k| (k − c k')(c_jk) + Σ_k c_k k'(c_jk) s_k ].

The linear part ℓ c of k (:meth:`~meanfield.activations.Activation.dual_parts`) is added exactly. Two matrix
products per tile of rows (the cosines, then the gradient's contraction) around one elementwise pass;
rows are tiled so that no more than ``tile_elements`` pair entries are held at once. At b_j = 0 this gives
∇V = κ Σ_k c_k k'(0) s_k, the symmetric choice σ'(0) = (σ'(0⁺) + σ'(0⁻))/2 for the ReLU family.
"""

from __future__ import annotations

import numpy as np

__all__ = ["kernel_field", "pair_field", "shifted_field", "series_field", "finish_relu_sums"]

#: Pair-kernel and series tiles hold tile_elements / 2^5 entries: their elementwise passes (tens per tile, or K per
#: series) run from cache instead of memory (measured: GELU at K = 36, m = 4096 on numpy 7.6 s →
#: see docs/guide/backends.md).
PAIR_TILE_SHIFT = 5


def kernel_field(nx, points, sources, coef, scale: float, activation, grad: bool = True,
                 tile_elements: int = 1 << 22):
    """(V, ∇V) at ``points`` (n, d) from ``sources`` (k, d) with coefficients ``coef`` (k,), on the arrays of the
    backend ``nx``; ∇V is None when ``grad`` is False.

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
    if activation.uses_pair_kernel:
        return pair_field(nx, points, sources, coef, scale, activation, grad, tile_elements)
    if activation.degree != 1:
        raise NotImplementedError(f"{activation!r} has a dual kernel but is not of degree 1; give it a pair_kernel")
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
        linear, w, k, dk, radial = activation.dual_parts(c, nx)
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


def pair_field(nx, points, sources, coef, scale: float, activation, grad: bool = True, tile_elements: int = 1 << 22,
               bias: bool = False):
    r"""The field of a unit given by its Gaussian pair kernel K(p, q, q')
    (:meth:`~meanfield.activations.Activation.pair_kernel`: any degree, non-homogeneous units):

    .. math::

        V(b_j) = Σ_k c_k K(κ⟨b_j, s_k⟩, κ|b_j|², κ|s_k|²), \qquad
        ∇V(b_j) = κ [ Σ_k c_k ∂_pK_{jk} s_k + 2 b_j Σ_k c_k ∂_qK_{jk} ],

    with the same two matrix products per tile of rows as :func:`kernel_field`. With ``bias`` the rows are biased
    neurons [b | c], K(p, q, q', c, c') is :meth:`~meanfield.activations.Activation.shifted_pair_kernel` and the last
    column of ∇V is ∂_cV = Σ_k c_k ∂_cK_{jk}; a unit with ``shifted_pair_moments`` (the ReLU) takes the correlation
    and its complements 1 ∓ ρ from the unit directions instead (:func:`meanfield.bivariate.pair_correlations`). A
    unit given by a Mehler series (:class:`~meanfield.activations.MehlerUnit`) has its per-particle coefficients
    computed once here and summed over pairs by the backend (:meth:`~meanfield.kernels.base.Backend.series_field`).

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
    same = points is sources
    b_points, c_points = (points[:, :-1], points[:, -1]) if bias else (points, None)
    b_sources, c_sources = (b_points, c_points) if same else ((sources[:, :-1], sources[:, -1]) if bias
                                                            else (sources, None))
    q_points = scale * (b_points * b_points).sum(axis=1)
    q_sources = q_points if same else scale * (b_sources * b_sources).sum(axis=1)
    n = points.shape[0]
    value = nx.empty((n,))
    gradient = nx.empty(tuple(points.shape)) if grad else None
    grad_b = gradient[:, :-1] if grad and bias else gradient
    if hasattr(activation, "mehler_series"):
        host_q = nx.to_numpy(q_points)
        host_c = None if c_points is None else nx.to_numpy(c_points)
        series = activation.mehler_series(host_q, host_q if same else nx.to_numpy(q_sources), host_c,
                                          host_c if same or c_sources is None else nx.to_numpy(c_sources))
        nx.series_field(b_points, q_points, b_sources, q_sources, coef, scale, series, value, grad_b,
                        gradient[:, -1] if grad and bias else None, tile_elements)
        return value, gradient
    weighted = coef[:, None] * b_sources
    rows = max(1, (tile_elements >> PAIR_TILE_SHIFT) // max(1, sources.shape[0]))
    by_directions = bias and hasattr(activation, "shifted_pair_moments")
    if by_directions:  # the correlation from the unit directions, accurate as |ρ| → 1 (meanfield.bivariate)
        u_points, n_points = nx.unit_rows(b_points)
        u_sources, n_sources = (u_points, n_points) if same else nx.unit_rows(b_sources)
        s_points, s_sources = n_points * scale**0.5, n_sources * scale**0.5
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        if by_directions:
            from ..bivariate import pair_correlations

            k, dk_dp, dk_dq, dk_dc = activation.shifted_pair_moments(
                s_points[i0:i1, None], s_sources[None, :], c_points[i0:i1, None], c_sources[None, :],
                *pair_correlations(u_points[i0:i1], u_sources, nx), nx)
        elif bias:
            p = scale * (b_points[i0:i1] @ b_sources.T)
            k, dk_dp, dk_dq, dk_dc = activation.shifted_pair_kernel(p, q_points[i0:i1, None], q_sources[None, :],
                                                                    c_points[i0:i1, None], c_sources[None, :], nx)
        else:
            p = scale * (b_points[i0:i1] @ b_sources.T)
            k, dk_dp, dk_dq = activation.pair_kernel(p, q_points[i0:i1, None], q_sources[None, :], nx)
        value[i0:i1] = k @ coef
        if grad:
            grad_b[i0:i1] = scale * (dk_dp @ weighted + (2.0 * b_points[i0:i1]) * (dk_dq @ coef)[:, None])
            if bias:
                gradient[i0:i1, -1] = dk_dc @ coef
    return value, gradient


def shifted_field(nx, points, sources, coef, scale: float, activation, grad: bool = True,
                  tile_elements: int = 1 << 22):
    r"""The field of biased neurons: rows of ``points`` and ``sources`` are [b | c] (the bias last), and with
    K(p, q, q', c, c') the unit's :meth:`~meanfield.activations.Activation.shifted_pair_kernel`,

    .. math::

        V(b_j, c_j) = Σ_k c_k K(κ⟨b_j, s_k⟩, κ|b_j|², κ|s_k|², c_j, c'_k), \qquad
        ∇_b V = κ [ Σ_k c_k ∂_pK_{jk} s_k + 2 b_j Σ_k c_k ∂_qK_{jk} ], \quad ∂_c V = Σ_k c_k ∂_cK_{jk},

    for inputs x ~ N(0, κI): :func:`pair_field` with ``bias=True``.

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
    return pair_field(nx, points, sources, coef, scale, activation, grad, tile_elements, bias=True)


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
