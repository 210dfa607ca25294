r"""Penalties λ ∫ r(θ) dμ on the neurons θ = (a, w), w = b (or (b, c) with biases), added to a problem's risk.

The flow of F(μ) + λ ∫ r dμ moves each particle by the flow's velocity minus λ ∇r(θ_j); the SGD trainer applies the
same λ ∇r(θ_j) per neuron (:func:`meanfield.sgd.train`), so both minimise the same regularised energy.

- :class:`WeightDecay`: r(θ) = ½ (a² + |w|²).
- :class:`VariationNorm`: r(θ) = |a| |w|, whose integral bounds the variation norm of the predictor (for a
  positively 1-homogeneous unit it is the path norm; Bach 2017, arXiv:1412.8690; Chizat & Bach 2020,
  arXiv:2002.04486).
"""

from __future__ import annotations

from ._validation import check_positive
from .registry import PENALTIES

__all__ = ["Penalty", "WeightDecay", "VariationNorm", "as_penalty"]


class Penalty:
    """λ ∫ r(θ) dμ: :meth:`value` of the measure and :meth:`gradient` λ ∇r(θ_j) at each particle, on the arrays of
    any backend (``nx``), for states [a | w] whose first ``outputs`` columns are the output weights a (K of them for
    a vector output layer).

    Examples
    --------
    A new penalty gives r and ∇r; here the ℓ1 penalty λ Σ |θ_i| of the output weights only:

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.penalties import Penalty
    >>> class OutputL1(Penalty):
    ...     name = "output_l1"
    ...     def per_particle(self, state, nx, outputs=1): return nx.abs(state[:, 0])
    ...     def gradient(self, state, nx, outputs=1):
    ...         g = 0.0 * state
    ...         g[:, 0] = self.strength * nx.sign(state[:, 0])
    ...         return g
    >>> OutputL1(0.5).value(np.array([[2.0, 1.0], [-1.0, 3.0]]), np.array([0.5, 0.5]), mf.get_backend("numpy"))
    0.75
    """

    name = "abstract"

    def __init__(self, strength: float):
        self.strength = check_positive(strength, "penalty strength (λ)")

    def per_particle(self, state, nx, outputs: int = 1):
        """r(θ_j) for every row of the state."""
        raise NotImplementedError

    def value(self, state, weights, nx, outputs: int = 1) -> float:
        """λ Σ_j w_j r(θ_j)."""
        return self.strength * float(weights @ self.per_particle(state, nx, outputs))

    def gradient(self, state, nx, outputs: int = 1):
        """λ ∇r(θ_j), one row per particle (the array type of ``state``)."""
        raise NotImplementedError

    def spec(self) -> dict:
        return {"penalty": self.name, "strength": self.strength}

    def __eq__(self, other):
        return isinstance(other, Penalty) and self.spec() == other.spec()

    def __hash__(self):
        return hash((self.name, self.strength))

    def __repr__(self):
        return f"{type(self).__name__}({self.strength!r})"


@PENALTIES.register("weight_decay")
class WeightDecay(Penalty):
    """(λ/2) ∫ (a² + |w|²) dμ: ∇r(θ) = θ.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.penalties import WeightDecay
    >>> WeightDecay(0.1).gradient(np.array([[1.0, 2.0, 0.0]]), mf.get_backend("numpy")).tolist()
    [[0.1, 0.2, 0.0]]
    """

    name = "weight_decay"

    def per_particle(self, state, nx, outputs: int = 1):
        return 0.5 * (state * state).sum(axis=1)

    def gradient(self, state, nx, outputs: int = 1):
        return self.strength * state


@PENALTIES.register("variation_norm")
class VariationNorm(Penalty):
    """λ ∫ |a| |w| dμ: ∇r(θ) = (|w| a/|a|, |a| w/|w|), with the subgradient 0 in w at w = 0 (and in a at a = 0);
    |a| is the Euclidean norm of a vector output layer's weights.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> from meanfield.penalties import VariationNorm
    >>> nx = mf.get_backend("numpy")
    >>> state = np.array([[-2.0, 3.0, 4.0]])   # a = −2, |w| = 5
    >>> VariationNorm(1.0).value(state, np.ones(1), nx), VariationNorm(1.0).gradient(state, nx).tolist()
    (10.0, [[-5.0, 1.2, 1.6]])
    """

    name = "variation_norm"

    def per_particle(self, state, nx, outputs: int = 1):
        a, w = state[:, :outputs], state[:, outputs:]
        return nx.sqrt((a * a).sum(axis=1)) * nx.sqrt((w * w).sum(axis=1))

    def gradient(self, state, nx, outputs: int = 1):
        a, w = state[:, :outputs], state[:, outputs:]
        norm_a, norm_w = nx.sqrt((a * a).sum(axis=1))[:, None], nx.sqrt((w * w).sum(axis=1))[:, None]
        unit_a = a / nx.where(norm_a > 0, norm_a, 1.0)
        unit_w = w / nx.where(norm_w > 0, norm_w, 1.0)
        return self.strength * nx.concat([norm_w * unit_a, norm_a * unit_w], axis=1)


def as_penalty(penalty) -> Penalty | None:
    """None, a :class:`Penalty`, or a pair (name, λ) with name "weight_decay" or "variation_norm".

    Examples
    --------
    >>> as_penalty(("variation_norm", 0.01))
    VariationNorm(0.01)
    """
    if penalty is None or isinstance(penalty, Penalty):
        return penalty
    try:
        name, strength = penalty
    except (TypeError, ValueError):
        raise TypeError(f"penalty must be None, a meanfield.penalties.Penalty or (name, strength), got {penalty!r}") \
            from None
    if name not in PENALTIES:
        raise ValueError(f"unknown penalty {name!r}; use one of {', '.join(map(repr, PENALTIES))}")
    return PENALTIES[name](strength)
