r"""Activations: one object per unit, carrying its finite function and its closed-form dual kernel.

The finite network (numpy, torch) and its mean-field limit come from the same description. For unit vectors u, u'
with cosine c and g ~ N(0, I), the *dual kernel* of σ is

.. math::

    k(c) = E[σ(⟨g, u⟩) σ(⟨g, u'⟩)],

and a positively homogeneous σ of degree n gives, for x ~ N(0, κI),
K(b, b') = E[σ(⟨b, x⟩) σ(⟨b', x⟩)] = κⁿ |b|ⁿ |b'|ⁿ k(cos θ), with gradient (n = 1)

.. math::

    ∇_b K(b, b') = κ |b'| [ (k − c k')(c) · b/|b| + k'(c) · b'/|b'| ].

The backends evaluate every all-pairs field from ``dual`` (see :mod:`meanfield.kernels.field`); a new activation
is one new subclass. For x uniform on the sphere the radial factor of a homogeneous σ separates (κ = 1/d for n = 1).

ReLU's dual kernel is the first arc-cosine kernel (Cho & Saul 2009): k(c) = J(θ)/(2π), J(θ) = sin θ + (π − θ) cos θ,
k'(c) = (π − θ)/(2π), k − c k' = sin θ/(2π). The leaky ReLU σ_α(z) = max(z, αz) = αz + (1 − α) relu(z) has
k_α(c) = α c + (1 − α)² k(c).
"""

from __future__ import annotations

import math

import numpy as np

__all__ = ["Activation", "LeakyReLU", "ReLU", "RELU", "as_activation"]


class Activation:
    """A unit σ: ``__call__`` (numpy), :meth:`torch`, :meth:`derivative`, the dual kernel :meth:`dual`, its degree of
    positive homogeneity and, when it has one, its decomposition σ(z) = λ z + ρ relu(z) (:attr:`relu_decomposition`),
    which gives its correlation with any target whose ReLU correlation is known."""

    name = "abstract"
    #: Degree n of positive homogeneity (σ(t z) = tⁿ σ(z) for t > 0); the fields are written for n = 1.
    degree = 1

    def __call__(self, z):
        raise NotImplementedError

    def torch(self, z):
        """σ on torch tensors (differentiable by autograd, for the finite network)."""
        raise NotImplementedError

    def derivative(self, z):
        """σ'(z) (numpy), with the symmetric choice at kinks."""
        raise NotImplementedError

    def dual(self, c, nx):
        """(k(c), k'(c), k(c) − c k'(c)) elementwise on an array of cosines, with the array functions of the backend
        ``nx`` (numpy or torch arrays)."""
        raise NotImplementedError

    def dual_parts(self, c, nx):
        """The dual kernel split as k(c) = ℓ c + w · k̃(c): returns (ℓ, w, k̃, k̃', k̃ − c k̃'). The backends add the
        linear part exactly (ℓ κ ⟨b, Σ c_k s_k⟩, no cosine involved) and apply the scalar w after the sums, which is
        how the reference kept the risk accurate to ~1e-15 · E f*² (by default ℓ = 0, w = 1)."""
        k, dk, radial = self.dual(c, nx)
        return 0.0, 1.0, k, dk, radial

    @property
    def relu_decomposition(self) -> tuple[float, float] | None:
        """(λ, ρ) with σ(z) = λ z + ρ relu(z), or None."""
        return None

    @property
    def odd_linear_coefficient(self) -> float:
        """β with (σ(z) − σ(−z))/2 = β z when the odd part of σ is linear (ReLU family: (1 + α)/2)."""
        lam, rho = self.relu_decomposition
        return lam + rho / 2

    def spec(self) -> dict:
        """How trajectory files record it: ``{"activation": name, "slope": ...}``."""
        return {"activation": self.name}

    def __eq__(self, other):
        return isinstance(other, Activation) and self.spec() == other.spec()

    def __hash__(self):
        return hash(tuple(sorted(self.spec().items())))

    def __repr__(self):
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in self.spec().items() if k != 'activation')})"


class LeakyReLU(Activation):
    """σ_α(z) = max(z, αz) for 0 ≤ α < 1 (α = 0 is the ReLU).

    Examples
    --------
    >>> import numpy as np
    >>> act = LeakyReLU(0.1)
    >>> act(np.array([-1.0, 2.0])).tolist()
    [-0.1, 2.0]
    >>> k, dk, radial = act.dual(np.array([1.0]), np)
    >>> float(k[0])  # E[σ(g)²] for g ~ N(0, 1): (1 + α²)/2
    0.505
    """

    name = "leaky_relu"

    def __init__(self, slope: float):
        slope = float(slope)
        if not 0.0 <= slope < 1.0:
            raise ValueError(f"the leaky-ReLU slope must lie in [0, 1), got {slope}")
        self.slope = slope

    def __call__(self, z):
        return np.maximum(z, self.slope * z) if self.slope else np.maximum(z, 0.0)

    def torch(self, z):
        import torch

        return torch.relu(z) if self.slope == 0 else torch.maximum(z, self.slope * z)

    def derivative(self, z):
        return np.where(z > 0, 1.0, np.where(z < 0, self.slope, (1 + self.slope) / 2))

    def dual(self, c, nx):
        linear, w, k, dk, radial = self.dual_parts(c, nx)
        k, dk, radial = w * k, w * dk, w * radial
        if linear:
            k = k + linear * c
            dk = dk + linear
        return k, dk, radial

    def dual_parts(self, c, nx):
        # In place on fresh arrays (numpy arrays and torch tensors alike): this pass is memory-bound.
        pi_minus_theta = nx.arccos(c)
        pi_minus_theta *= -1.0
        pi_minus_theta += math.pi
        sin = 1.0 - c
        sin *= 1.0 + c
        sin = nx.sqrt(sin)
        k = pi_minus_theta * c
        k += sin
        return self.slope, (1 - self.slope) ** 2 / (2 * math.pi), k, pi_minus_theta, sin

    @property
    def relu_decomposition(self):
        return self.slope, 1.0 - self.slope

    def spec(self):
        return {"activation": self.name, "slope": self.slope}


class ReLU(LeakyReLU):
    """σ(z) = max(z, 0).

    Examples
    --------
    >>> import numpy as np
    >>> ReLU()(np.array([-1.0, 2.0])).tolist()
    [0.0, 2.0]
    """

    name = "relu"

    def __init__(self):
        super().__init__(0.0)

    def spec(self):
        return {"activation": self.name, "slope": 0.0}


RELU = ReLU()


def as_activation(activation=None, slope: float | None = None) -> Activation:
    """An :class:`Activation` from an instance, a name ("relu", "leaky_relu" with ``slope``) or a number (a leaky
    slope; 0 is the ReLU), so that older calls passing a slope keep working.

    Examples
    --------
    >>> as_activation("leaky_relu", 0.2), as_activation(0.0), as_activation()
    (LeakyReLU(slope=0.2), ReLU(slope=0.0), ReLU(slope=0.0))
    """
    if activation is None:
        activation = "relu" if not slope else "leaky_relu"
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, (int, float, np.floating)) and not isinstance(activation, bool):
        return RELU if activation == 0 else LeakyReLU(activation)
    if activation == "relu":
        return RELU
    if activation == "leaky_relu":
        slope = 0.01 if slope is None else float(slope)
        if not 0.0 < slope < 1.0:
            raise ValueError(f"the leaky-ReLU slope must lie in (0, 1), got {slope}")
        return LeakyReLU(slope)
    raise ValueError(f"activation must be 'relu', 'leaky_relu' or an Activation, got {activation!r}")
