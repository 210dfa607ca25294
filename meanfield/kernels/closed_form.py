r"""Closed forms of the (leaky-)ReLU kernel under rotationally invariant inputs, pair by pair.

For inputs with E[x xᵀ] = κ I that are Gaussian or uniform on the sphere (see :mod:`meanfield.inputs`),
θ = angle(b, b') and J(θ) = sin θ + (π − θ) cos θ (Cho & Saul 2009, arc-cosine kernel of degree 1):

.. math::

    K(b, b') = κ |b| |b'| J(θ) / (2π), \qquad
    ∇_b K(b, b') = κ [ (π − θ) b' + |b'| \sin θ \, b/|b| ] / (2π).

Leaky ReLU σ_α(z) = max(z, αz) = αz + (1 − α) σ(z) gives K_α = α κ ⟨b, b'⟩ + (1 − α)² K.

Convention at b = 0: K(0, b') = 0 and ∇_b K(0, b') = κ b'/4, the value of E[σ'(⟨b, x⟩) x σ(⟨b', x⟩)] with
σ'(0) = 1/2 (the symmetric subgradient, σ(z) = z/2 + |z|/2). It is what the formula gives with b/|b| := 0
and θ := π/2.

These pair functions use the angle θ = 2 atan2(|u − u'|, |u + u'|) of the unit vectors, accurate to
round-off for every angle including θ → 0 and θ → π. They are the reference that the all-pairs backends
(which take θ from a Gram matrix, for speed) are tested against.
"""

from __future__ import annotations

import numpy as np

__all__ = ["arccos_j", "pair_angle", "relu_kernel", "relu_kernel_grad"]


def arccos_j(theta):
    """J(θ) = sin θ + (π − θ) cos θ, so that E[σ(g·u)σ(g·u')] = J(θ)/(2π) for g ~ N(0, I), |u| = |u'| = 1.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.kernels import arccos_j
    >>> float(arccos_j(0.0)) == float(np.pi)     # θ = 0: E relu(g)² = ½ = J(0)/(2π)
    True
    >>> g = np.random.default_rng(0).standard_normal((200_000, 2))   # u = e₁, u' = e₂: θ = π/2, J = 1
    >>> bool(abs(np.mean(np.maximum(g[:, 0], 0) * np.maximum(g[:, 1], 0)) - 1 / (2 * np.pi)) < 2e-3)
    True
    """
    return np.sin(theta) + (np.pi - theta) * np.cos(theta)


def unit_and_norm(b):
    """Return (b/|b|, |b|) along the last axis, with b/|b| := 0 where b = 0."""
    b = np.asarray(b, dtype=np.float64)
    norm = np.linalg.norm(b, axis=-1)
    safe = np.where(norm > 0, norm, 1.0)
    return b / safe[..., None] * (norm > 0)[..., None], norm


def pair_angle(b1, b2):
    """Angle between b1 and b2 (broadcast over leading axes), π/2 when either is zero.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.kernels import pair_angle
    >>> bool(np.isclose(pair_angle(np.array([1.0, 0.0]), np.array([1.0, 1.0])), np.pi / 4))
    True
    """
    u1, n1 = unit_and_norm(b1)
    u2, n2 = unit_and_norm(b2)
    theta = 2.0 * np.arctan2(np.linalg.norm(u1 - u2, axis=-1), np.linalg.norm(u1 + u2, axis=-1))
    return np.where((n1 > 0) & (n2 > 0), theta, np.pi / 2)


def relu_kernel(b1, b2, scale: float = 1.0, alpha: float = 0.0):
    r"""K_α(b1, b2) for each pair of rows (broadcasting); ``scale`` is κ, ``alpha`` the leaky slope.

    Notes
    -----
    For inputs with E[xxᵀ] = κI and the ReLU (α = 0), with θ the angle between b and b' (Cho & Saul 2009):

    .. math::

        K(b, b') = \mathbb{E}[\sigma(\langle b, x\rangle)\, \sigma(\langle b', x\rangle)]
                 = \frac{\kappa\, |b|\, |b'|}{2\pi} \big(\sin\theta + (\pi - \theta)\cos\theta\big);

    the leaky ReLU σ = αz + (1 − α) relu z adds its linear part's terms.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.kernels import relu_kernel
    >>> b1, b2 = np.array([1.0, 0.0]), np.array([0.5, 0.5])
    >>> x = np.random.default_rng(0).standard_normal((1_000_000, 2))
    >>> mc = np.mean(np.maximum(x @ b1, 0) * np.maximum(x @ b2, 0))
    >>> bool(abs(relu_kernel(b1, b2) - mc) < 2e-3)
    True
    """
    b1 = np.asarray(b1, dtype=np.float64)
    b2 = np.asarray(b2, dtype=np.float64)
    theta = pair_angle(b1, b2)
    k = scale * np.linalg.norm(b1, axis=-1) * np.linalg.norm(b2, axis=-1) * arccos_j(theta) / (2 * np.pi)
    if alpha:
        k = alpha * scale * np.sum(b1 * b2, axis=-1) + (1 - alpha) ** 2 * k
    return k


def relu_kernel_grad(b1, b2, scale: float = 1.0, alpha: float = 0.0):
    """∇ with respect to b1 of K_α(b1, b2), for each pair of rows (broadcasting).

    Examples
    --------
    Against a central difference:

    >>> import numpy as np
    >>> from meanfield.kernels import relu_kernel, relu_kernel_grad
    >>> b1, b2, e = np.array([1.0, 0.3]), np.array([0.5, 0.5]), np.array([1e-6, 0.0])
    >>> fd = (relu_kernel(b1 + e, b2) - relu_kernel(b1 - e, b2)) / 2e-6
    >>> bool(np.isclose(relu_kernel_grad(b1, b2)[0], fd, rtol=1e-8))
    True
    """
    b1 = np.asarray(b1, dtype=np.float64)
    b2 = np.asarray(b2, dtype=np.float64)
    u1, _ = unit_and_norm(b1)
    theta = pair_angle(b1, b2)[..., None]
    n2 = np.linalg.norm(b2, axis=-1)[..., None]
    g = scale * ((np.pi - theta) * b2 + n2 * np.sin(theta) * u1) / (2 * np.pi)
    if alpha:
        g = alpha * scale * b2 + (1 - alpha) ** 2 * g
    return g
