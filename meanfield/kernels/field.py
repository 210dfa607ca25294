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

__all__ = ["kernel_field", "pair_field", "shifted_field"]


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


def pair_field(nx, points, sources, coef, scale: float, activation, grad: bool = True, tile_elements: int = 1 << 22):
    r"""The field of a unit given by its Gaussian pair kernel K(p, q, q')
    (:meth:`~meanfield.activations.Activation.pair_kernel`: any degree, non-homogeneous units):

    .. math::

        V(b_j) = Σ_k c_k K(κ⟨b_j, s_k⟩, κ|b_j|², κ|s_k|²), \qquad
        ∇V(b_j) = κ [ Σ_k c_k ∂_pK_{jk} s_k + 2 b_j Σ_k c_k ∂_qK_{jk} ],

    with the same two matrix products per tile of rows as :func:`kernel_field`.

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
    q_points = scale * (points * points).sum(axis=1)
    q_sources = q_points if points is sources else scale * (sources * sources).sum(axis=1)
    weighted = coef[:, None] * sources
    n = points.shape[0]
    value = nx.empty((n,))
    gradient = nx.empty(tuple(points.shape)) if grad else None
    rows = max(1, tile_elements // max(1, sources.shape[0]))
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        p = scale * (points[i0:i1] @ sources.T)
        k, dk_dp, dk_dq = activation.pair_kernel(p, q_points[i0:i1, None], q_sources[None, :], nx)
        value[i0:i1] = k @ coef
        if grad:
            gradient[i0:i1] = scale * (dk_dp @ weighted + (2.0 * points[i0:i1]) * (dk_dq @ coef)[:, None])
    return value, gradient


def shifted_field(nx, points, sources, coef, scale: float, activation, grad: bool = True,
                  tile_elements: int = 1 << 22):
    r"""The field of biased neurons: rows of ``points`` and ``sources`` are [b | c] (the bias last), and with
    K(p, q, q', c, c') the unit's :meth:`~meanfield.activations.Activation.shifted_pair_kernel`,

    .. math::

        V(b_j, c_j) = Σ_k c_k K(κ⟨b_j, s_k⟩, κ|b_j|², κ|s_k|², c_j, c'_k), \qquad
        ∇_b V = κ [ Σ_k c_k ∂_pK_{jk} s_k + 2 b_j Σ_k c_k ∂_qK_{jk} ], \quad ∂_c V = Σ_k c_k ∂_cK_{jk},

    for inputs x ~ N(0, κI), with the same two matrix products per tile of rows as :func:`kernel_field`.

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
    b_points, c_points = points[:, :-1], points[:, -1]
    same = points is sources
    b_sources, c_sources = (b_points, c_points) if same else (sources[:, :-1], sources[:, -1])
    q_points = scale * (b_points * b_points).sum(axis=1)
    q_sources = q_points if same else scale * (b_sources * b_sources).sum(axis=1)
    weighted = coef[:, None] * b_sources
    n = points.shape[0]
    value = nx.empty((n,))
    gradient = nx.empty(tuple(points.shape)) if grad else None
    rows = max(1, tile_elements // max(1, sources.shape[0]))
    for i0 in range(0, n, rows):
        i1 = min(n, i0 + rows)
        p = scale * (b_points[i0:i1] @ b_sources.T)
        k, dk_dp, dk_dq, dk_dc = activation.shifted_pair_kernel(p, q_points[i0:i1, None], q_sources[None, :],
                                                                c_points[i0:i1, None], c_sources[None, :], nx)
        value[i0:i1] = k @ coef
        if grad:
            gradient[i0:i1, :-1] = scale * (dk_dp @ weighted + (2.0 * b_points[i0:i1]) * (dk_dq @ coef)[:, None])
            gradient[i0:i1, -1] = dk_dc @ coef
    return value, gradient
