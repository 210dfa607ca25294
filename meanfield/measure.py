"""Particle measures μ = Σ_j w_j δ_{(a_j, b_j)} over neurons (a, b) ∈ R × R^d."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np

from ._validation import as_float_array

__all__ = ["ParticleMeasure"]


class ParticleMeasure:
    """A weighted particle measure over neurons θ = (a, b): the predictor is f(x) = Σ_j w_j a_j σ(⟨b_j, x⟩).

    Parameters
    ----------
    a : array (m,)
        Output weights.
    b : array (m, d)
        Input weights, one neuron per row.
    weights : array (m,), optional
        Positive particle masses summing to 1 (masses that do not are normalised, with a warning). Uniform (1/m)
        by default.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> mu = mf.ParticleMeasure(np.array([1.0, -1.0]), np.eye(2))
    >>> mu.m, mu.d, mu.weights.tolist()
    (2, 2, [0.5, 0.5])
    """

    __slots__ = ("a", "b", "weights")

    def __init__(self, a, b, weights=None):
        a = as_float_array(a, "a (output weights)", ndim=1)
        b = as_float_array(b, "b (input weights)", ndim=2)
        if a.shape[0] != b.shape[0]:
            raise ValueError(f"a has {a.shape[0]} particles but b has {b.shape[0]} rows; they must match")
        if a.shape[0] < 1:
            raise ValueError("a particle measure needs at least one particle (m >= 1)")
        if weights is None:
            weights = np.full(a.shape[0], 1.0 / a.shape[0])
        else:
            weights = as_float_array(weights, "weights", shape=(a.shape[0],))
            if np.any(weights <= 0):
                raise ValueError("weights must all be > 0")
            total = weights.sum()
            if abs(total - 1.0) > 1e-12 * weights.size:  # far above the round-off of a normalised sum
                warnings.warn(f"particle weights sum to {total:.6g}, not 1: they were divided by their sum (pass "
                              "weights / weights.sum() to silence this)", stacklevel=2)
            weights = weights / total
        self.a, self.b, self.weights = a, b, weights

    @property
    def m(self) -> int:
        """Number of particles."""
        return self.a.shape[0]

    @property
    def d(self) -> int:
        """Input dimension."""
        return self.b.shape[1]

    @property
    def uniform(self) -> bool:
        return bool(np.all(self.weights == self.weights[0]))

    def predict(self, x, activation=0.0) -> np.ndarray:
        """f(μ; x) = Σ_j w_j a_j σ(⟨b_j, x⟩) on an (n, d) array of inputs; ``activation`` an
        :class:`~meanfield.activations.Activation` or a leaky slope (0, the default, is the ReLU). The problem's
        :meth:`~meanfield.Problem.predict` takes its own activation."""
        from .activations import as_activation

        x = np.asarray(x, dtype=np.float64)
        if x.ndim != 2 or x.shape[1] != self.d:
            raise ValueError(f"predict needs inputs of shape (n, {self.d}) for neurons of dimension {self.d}, "
                             f"got shape {x.shape}")
        return as_activation(activation)(x @ self.b.T) @ (self.weights * self.a)

    def state(self) -> np.ndarray:
        """The particles as one (m, 1 + d) array [a | b], the state the solvers integrate."""
        return np.concatenate([self.a[:, None], self.b], axis=1)

    @classmethod
    def from_state(cls, state, weights=None) -> ParticleMeasure:
        state = np.asarray(state, dtype=np.float64)
        return cls(state[:, 0].copy(), state[:, 1:].copy(), weights)

    def checksum(self) -> str:
        """SHA-1 of the state [a | b] (how a resumed run checks that it continues from the same initialisation)."""
        return hashlib.sha1(np.ascontiguousarray(self.state()).tobytes()).hexdigest()

    def copy(self) -> ParticleMeasure:
        return ParticleMeasure(self.a.copy(), self.b.copy(), self.weights.copy())

    def __repr__(self):
        return f"ParticleMeasure(m={self.m}, d={self.d})"
