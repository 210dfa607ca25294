"""Symmetries: an orthogonal map T of the inputs with a parity ε, f*∘T = ε f*, acting on neurons as
(a, b) ↦ (ε a, T b) (Hajjar & Chizat 2023, arXiv:2211.08771, §3)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..measure import ParticleMeasure

__all__ = ["Symmetry", "sign_flip", "permutation", "reflection", "coordinate_reflection", "subspace_rotation",
           "orbit"]


@dataclass(frozen=True, eq=False)
class Symmetry:
    """An orthogonal map T (d×d) with parity ε ∈ {+1, −1}.

    On inputs x ↦ T x; on neurons T̃(a, b) = (ε a, T b). If T#ρ = ρ and f*∘T = ε f*, a T̃-invariant initial
    measure stays T̃-invariant under the flow and f(μ_t)∘T = ε f(μ_t).

    Examples
    --------
    >>> import numpy as np
    >>> s = sign_flip(3)
    >>> s.parity, s.order()
    (-1, 2)
    """

    matrix: np.ndarray
    parity: int = 1
    name: str = field(default="T")

    def __post_init__(self):
        T = np.asarray(self.matrix, dtype=np.float64)
        if T.ndim != 2 or T.shape[0] != T.shape[1]:
            raise ValueError(f"a symmetry needs a square matrix, got shape {T.shape}")
        if not np.allclose(T @ T.T, np.eye(T.shape[0]), atol=1e-10):
            raise ValueError(f"the map {self.name!r} is not orthogonal (T Tᵀ ≠ I)")
        if self.parity not in (1, -1):
            raise ValueError(f"parity must be +1 or -1, got {self.parity}")
        object.__setattr__(self, "matrix", T)

    @property
    def d(self) -> int:
        return self.matrix.shape[0]

    def apply_inputs(self, x: np.ndarray) -> np.ndarray:
        """x ↦ T x for the rows of x."""
        return np.asarray(x) @ self.matrix.T

    def apply_measure(self, mu: ParticleMeasure) -> ParticleMeasure:
        """T̃#μ: every neuron (a, b) moved to (ε a, T b) (a bias c stays: T acts on the inputs)."""
        return mu.replaced(a=self.parity * mu.a, b=mu.b @ self.matrix.T)

    def compose(self, other: Symmetry) -> Symmetry:
        """self ∘ other."""
        return Symmetry(self.matrix @ other.matrix, self.parity * other.parity, f"{self.name}∘{other.name}")

    def order(self, max_order: int = 720) -> int | None:
        """Smallest k >= 1 with T^k = I (and ε^k = 1), or None if above ``max_order``."""
        power = np.eye(self.d)
        for k in range(1, max_order + 1):
            power = power @ self.matrix
            if np.allclose(power, np.eye(self.d), atol=1e-9) and self.parity**k == 1:
                return k
        return None

    def __repr__(self):
        return f"Symmetry({self.name}, parity={self.parity:+d}, d={self.d})"


def sign_flip(d: int, parity: int = -1) -> Symmetry:
    """T = −I (odd targets have parity −1, even ones +1).

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.symmetry import sign_flip
    >>> T = sign_flip(2)
    >>> mu = mf.ParticleMeasure([1.0], [[1.0, 2.0]])
    >>> T.apply_measure(mu).a.tolist(), T.apply_measure(mu).b.tolist()
    ([-1.0], [[-1.0, -2.0]])
    """
    return Symmetry(-np.eye(d), parity, "-I")


def permutation(perm, parity: int = 1) -> Symmetry:
    """(T x)_i = x_{perm[i]}.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.symmetry import permutation
    >>> permutation([1, 2, 0]).apply_inputs(np.array([[10.0, 20.0, 30.0]])).tolist()
    [[20.0, 30.0, 10.0]]
    """
    perm = np.asarray(perm)
    if sorted(perm.tolist()) != list(range(len(perm))):
        raise ValueError(f"{perm.tolist()} is not a permutation of 0..{len(perm) - 1}")
    return Symmetry(np.eye(len(perm))[perm], parity, f"perm{perm.tolist()}")


def reflection(v, parity: int = 1) -> Symmetry:
    """Householder reflection across the hyperplane orthogonal to v: T = I − 2 v vᵀ / |v|².

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.symmetry import reflection
    >>> T = reflection([1.0, 1.0])
    >>> T.apply_inputs(np.array([[1.0, 0.0]])).round(12).tolist(), T.order()
    ([[0.0, -1.0]], 2)
    """
    v = np.asarray(v, dtype=np.float64)
    return Symmetry(np.eye(len(v)) - 2 * np.outer(v, v) / (v @ v), parity, "reflection")


def coordinate_reflection(d: int, i: int, parity: int = 1) -> Symmetry:
    """x_i ↦ −x_i.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.symmetry import coordinate_reflection
    >>> coordinate_reflection(3, 1).apply_inputs(np.array([[1.0, 2.0, 3.0]])).tolist()
    [[1.0, -2.0, 3.0]]
    """
    T = np.eye(d)
    T[i, i] = -1.0
    return Symmetry(T, parity, f"x{i}->-x{i}")


def subspace_rotation(Q, rng=None) -> Symmetry:
    """A Haar-random element of O(H^⊥) for H = span(Q): identity on H, a random orthogonal map on H^⊥.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.symmetry import subspace_rotation
    >>> Q = np.eye(4)[:, :1]
    >>> T = subspace_rotation(Q, rng=0)
    >>> bool(np.allclose(T.matrix @ Q, Q) and np.allclose(T.matrix @ T.matrix.T, np.eye(4)))
    True
    """
    Q = np.asarray(Q, dtype=np.float64)
    d, d_h = Q.shape
    rng = np.random.default_rng(rng)
    full, _ = np.linalg.qr(np.concatenate([Q, rng.standard_normal((d, d - d_h))], axis=1))
    P = full[:, d_h:]  # orthonormal basis of H^⊥
    q, r = np.linalg.qr(rng.standard_normal((d - d_h, d - d_h)))
    R = q * np.sign(np.diag(r))
    return Symmetry(Q @ Q.T + P @ R @ P.T, 1, "O(H⊥)")


def orbit(symmetry: Symmetry, max_order: int = 720) -> list[Symmetry]:
    """The cyclic group generated by ``symmetry``: [I, T, T², …, T^{k−1}].

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.symmetry import orbit, permutation
    >>> len(orbit(permutation([1, 2, 0])))        # a 3-cycle generates a group of order 3
    3
    """
    k = symmetry.order(max_order)
    if k is None:
        raise ValueError(f"{symmetry!r} has infinite or too large an order (> {max_order}) to enumerate its orbit")
    elements = [Symmetry(np.eye(symmetry.d), 1, "I")]
    for _ in range(k - 1):
        elements.append(symmetry.compose(elements[-1]))
    return elements
