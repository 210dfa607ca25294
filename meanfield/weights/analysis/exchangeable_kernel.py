r"""The layer kernel of exchangeable Gaussian weights, and its transition as the within-row covariance leaves zero
(Tsuchida, Roosta & Gallagher 2019, arXiv:1810.08351).

Rows w ∈ Rⁿ with w ~ N(0, Σ), Σ = (v − c) I + c 11ᵀ: entry variance v, covariance c between two entries of a row
(positive definite for −v/(n − 1) < c < v). For a unit homogeneous of degree 1 the layer kernel is the unit's dual
kernel in the metric of Σ,

.. math::

    k(x, y) = E[σ(w·x) σ(w·y)] = |x|_Σ |y|_Σ\, k_σ(\cos θ_Σ), \qquad
    ⟨x, y⟩_Σ = (v − c)⟨x, y⟩ + c\,(1ᵀx)(1ᵀy),

(for the ReLU the arc-cosine kernel). For zero-sum inputs (1ᵀx = 0) the common mode is invisible and only the
variance v − c changes, so the normalised kernel k(x, y)/√(k(x, x) k(y, y)) does not move with c. For positive
inputs c(1ᵀx)² ~ c n² competes with (v − c)|x|² ~ n: the normalised kernel leaves its c = 0 value once c ≳ v/n,
so at any fixed c > 0 it moves as the width n grows, and the change sharpens like 1/n (:func:`transition_covariance`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..._validation import check_positive
from .equivalent_kernel import equivalent_kernel
from .exchangeability import EnsembleMoments

__all__ = ["exchangeable_kernel", "normalized_exchangeable_kernel", "sample_exchangeable", "transition_covariance",
           "ExchangeableFit"]


def _check(v: float, c: float, n: int) -> None:
    check_positive(v, "v (entry variance)")
    if not -v / max(n - 1, 1) < c < v:
        raise ValueError(f"the within-row covariance c = {c} must lie in (−v/(n − 1), v) = ({-v / max(n - 1, 1):.3g}, "
                         f"{v}) for a positive definite covariance (v = {v}, n = {n})")


def _root_sigma(x, v: float, c: float) -> np.ndarray:
    """Σ^{1/2} x for Σ = (v − c) I + c 11ᵀ, row by row: √(v − c)(x − x̄1) + √(v − c + nc) x̄1."""
    x = np.asarray(x, dtype=np.float64)
    n = x.shape[-1]
    mean = x.mean(axis=-1, keepdims=True)
    return np.sqrt(v - c) * (x - mean) + np.sqrt(v - c + n * c) * mean


def exchangeable_kernel(x, y, v: float, c: float, activation=0.0):
    """k(x, y) = E[σ(w·x) σ(w·y)] for rows w ~ N(0, (v − c) I + c 11ᵀ), at each pair of rows of x, y.

    Examples
    --------
    >>> import numpy as np
    >>> x = np.ones(4) / 2
    >>> float(exchangeable_kernel(x, x, 1.0, 0.0))   # E relu(g)² = ½ for g ~ N(0, |x|²) with |x| = 1
    0.5
    >>> round(float(exchangeable_kernel(x, x, 1.0, 0.25)), 12)   # x is the common mode: variance 1 + 3/4 · 1
    0.875
    """
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    n = x.shape[-1]
    _check(v, c, n)
    # w = Σ^{1/2} g with g ~ N(0, I): w·x = g·(Σ^{1/2} x), so the kernel is the isotropic one (E|g|² = n) at Σ^{1/2}x.
    return equivalent_kernel(_root_sigma(x, v, c), _root_sigma(y, v, c), float(n), activation)


def normalized_exchangeable_kernel(x, y, v: float, c: float, activation=0.0):
    """k(x, y)/√(k(x, x) k(y, y)) for the exchangeable law (the macroscopic quantity whose transition in c the paper
    reports).

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.weights.analysis import normalized_exchangeable_kernel
    >>> x = np.ones(4) / 2
    >>> float(normalized_exchangeable_kernel(x, x, 1.0, 0.3))       # a cosine: 1 on the diagonal
    1.0
    """
    kxy = exchangeable_kernel(x, y, v, c, activation)
    return kxy / np.sqrt(exchangeable_kernel(x, x, v, c, activation) * exchangeable_kernel(y, y, v, c, activation))


def sample_exchangeable(n_rows: int, n: int, v: float, c: float, rng=None) -> np.ndarray:
    """``n_rows`` rows w ~ N(0, (v − c) I + c 11ᵀ) in Rⁿ, as √(v − c) g + √c z 1 (c ≥ 0) with independent g, z.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.weights.analysis import sample_exchangeable
    >>> w = sample_exchangeable(200_000, 3, v=1.0, c=0.25, rng=0)
    >>> cov = np.cov(w.T)
    >>> bool(np.allclose(cov, 0.75 * np.eye(3) + 0.25, atol=0.02))
    True
    """
    _check(v, c, n)
    if c < 0:
        raise ValueError("sampling is written for c >= 0 (w = √(v − c) g + √c z 1)")
    rng = np.random.default_rng(rng)
    return np.sqrt(v - c) * rng.standard_normal((int(n_rows), n)) + np.sqrt(c) * rng.standard_normal((int(n_rows), 1))


def transition_covariance(x, y, v: float = 1.0, activation=0.0, level: float = 0.5) -> float:
    """The within-row covariance c at which the normalised kernel of (x, y) has covered ``level`` of its way from its
    value at c = 0 to its limit 1 as c → v (where every row is the common mode). It scales like v/n for inputs with
    a common mode (positive inputs); for zero-sum inputs nothing moves and the result is v (never reached).

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> for n in (100, 1000):
    ...     x, y = np.abs(rng.standard_normal((2, n)))
    ...     print(n, round(n * transition_covariance(x, y), 1))
    100 1.7
    1000 1.8
    """
    from scipy.optimize import brentq

    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    start = float(normalized_exchangeable_kernel(x, y, v, 0.0, activation))
    goal = start + level * (1.0 - start)

    def gap(c):
        return float(normalized_exchangeable_kernel(x, y, v, c, activation)) - goal

    top = v * (1 - 1e-9)
    if gap(top) <= 0:
        return float(v)
    return float(brentq(gap, 0.0, top, xtol=1e-14 * v, rtol=1e-12))


@dataclass(frozen=True)
class ExchangeableFit:
    """(v, c) of an ensemble of weight matrices (rows of length n): v̂ the mean entry variance across seeds, ĉ the
    mean covariance across seeds of two entries of one row (:attr:`EnsembleMoments.c_row`); the exchangeable
    Gaussian law with these moments predicts the layer kernel.

    Examples
    --------
    >>> import numpy as np
    >>> from meanfield.weights.analysis import ExchangeableFit, sample_exchangeable
    >>> rng = np.random.default_rng(0)
    >>> W = np.stack([sample_exchangeable(4, 50, v=1.0, c=0.2, rng=rng) for _ in range(2000)])   # 2000 seeds
    >>> fit = ExchangeableFit.from_weights(W)
    >>> bool(abs(fit.v - 1.0) < 0.02 and abs(fit.c - 0.2) < 0.02), fit.n
    (True, 50)
    """

    v: float
    c: float
    n: int

    @classmethod
    def from_moments(cls, moments: EnsembleMoments) -> ExchangeableFit:
        stats = moments.statistics()
        return cls(stats["variance"], stats["c_row"], int(moments.mean.shape[1]))

    @classmethod
    def from_weights(cls, W) -> ExchangeableFit:
        """From an array (seeds, rows, n)."""
        return cls.from_moments(EnsembleMoments().add(W))

    @property
    def scaled(self) -> float:
        """n ĉ / v̂: about 1 where the common mode of positive inputs weighs as much as the rest."""
        return self.n * self.c / self.v

    def normalized_kernel(self, x, y, activation=0.0):
        return normalized_exchangeable_kernel(x, y, self.v, self.c, activation)

    def transition(self, x, y, activation=0.0) -> float:
        """The covariance of half the transition for (x, y) at this v (compare with :attr:`c`)."""
        return transition_covariance(x, y, self.v, activation)
