r"""Reduced flow for odd targets (Hajjar & Chizat 2023, arXiv:2211.08771, §4.1).

For an odd target and a measure invariant under S(a, b) = (−a, −b), the predictor is linear,
f(μ; x) = ⟨w, x⟩ with w = c Σ_r w_r a_r b_r over one representative r per mirror pair (c = (1 + α)/2: ½ for ReLU,
since σ(z) − σ(−z) = 2c z), and ψ(b) = c⟨g, b⟩ with g = Σ w − E[f* x]. Each representative then follows a
two-layer *linear* network:

.. math::  ȧ = −c⟨b, g⟩, \qquad ḃ = −c\, a\, g,

so a² − |b|² is conserved and w → w* = Σ⁻¹E[f* x], the L²(ρ) projection of f* on linear functions; the minimal
risk is ½(E f*² − ⟨w*, Σ w*⟩). Cost O(m d) per evaluation instead of O(m² d).
"""

from __future__ import annotations

import numpy as np

from ..problem import Evaluation, Problem, ProblemVariant

__all__ = ["OddReducedProblem", "odd_minimum"]


def odd_minimum(problem: Problem) -> tuple[np.ndarray, float]:
    """(w*, minimal risk) for an odd target: w* = Σ⁻¹E[f* x], F_min = ½(E f*² − ⟨w*, Σ w*⟩).

    Examples
    --------
    A linear target is reached exactly (minimal risk 0) by an odd network:

    >>> import numpy as np, meanfield as mf
    >>> from meanfield.reduced import odd_minimum
    >>> w, risk = odd_minimum(mf.Problem(mf.LinearTarget(np.array([1.0, 2.0])), mf.Gaussian(2)))
    >>> w.tolist(), abs(risk) < 1e-15
    ([1.0, 2.0], True)
    """
    kappa = problem.scale
    w_star = problem.target_linear_moment / kappa
    return w_star, 0.5 * (problem.target_energy - kappa * float(w_star @ w_star))


class OddReducedProblem(ProblemVariant):
    """The odd-target reduced flow; its state is one representative per mirror pair (m particles stand for the
    2m-particle symmetric measure :func:`meanfield.init.symmetrize` of them). Plugs into :func:`meanfield.simulate`.

    Examples
    --------
    >>> import numpy as np, meanfield as mf
    >>> full = mf.Problem(mf.CubicTarget(np.ones(5)), mf.Gaussian(5))
    >>> reduced = OddReducedProblem(full)
    >>> mu = mf.init.sign_sphere(4, 5, seed=0)
    >>> bool(np.isclose(reduced.risk(mu), full.risk(mf.init.symmetrize(mu)), rtol=1e-12))
    True
    """

    objectives = (Problem,)  # an odd target and a symmetric input law
    bias_refusal = ("a bias breaks the sign-flip symmetry (a, b) ↦ (−a, −b) that keeps the predictor linear (a σ(z + "
                    "c) − a σ(−z − c) = a(z + c) is not odd); run the full problem")

    def __init__(self, problem: Problem):
        super().__init__(problem)
        if not problem.target.odd:
            raise ValueError(f"the odd reduced flow needs an odd target; {type(problem.target).__name__} is not "
                             "declared odd (target.odd)")
        if problem.unit.relu_decomposition is None:
            raise ValueError(f"the odd reduction needs a unit whose odd part is linear (the ReLU family), not "
                             f"{problem.unit!r}")
        self.linear_coefficient = self.unit.odd_linear_coefficient
        self.minimum_risk = odd_minimum(problem)[1]

    def variant_spec(self) -> dict:
        return {"reduction": "odd"}

    def assemble(self, bound, state, weights) -> Evaluation:
        """The odd-linear strategy: ψ and the risk in closed form in w, the risk in its excess form
        ½κ|w − w*|² + F_min, which stays accurate as the excess goes to 0 (the generic assembly would cancel
        E f*² against the fields)."""
        kappa, c = self.scale, self.linear_coefficient
        w_star = bound.constant("odd_w_star", lambda bk: bk.asarray(odd_minimum(self)[0]))
        a, b = state[:, 0], state[:, 1:]
        w = c * ((weights * a) @ b)
        g = kappa * (w - w_star)  # Σw − E[f* x] with Σ = κ I
        diff = w - w_star
        risk = 0.5 * kappa * float(diff @ diff) + self.minimum_risk
        return Evaluation(c * (b @ g), c * g, risk)

    def linear_predictor(self, mu) -> np.ndarray:
        """w with f(μ; x) = ⟨w, x⟩ for the symmetrised measure of the representatives μ."""
        return self.linear_coefficient * (mu.weights * mu.a) @ mu.b
